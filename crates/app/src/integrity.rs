//! Integrity (issue 18): scanning a year's paid-call graph with the detectors of
//! `opchub_integrity`, storing what they find, and its review — the committee upholds or
//! dismisses a finding with a reason; the flagged parties see it and may answer.
//!
//! What a finding does to money (M2.3, both sides): while it is open, the M2.3 lines of its
//! parties are held (undetermined, so approval moves nothing); once upheld, the paid calls among
//! its parties stop qualifying — a line already paid is lowered through its recovery order by the
//! next batch; once dismissed, nothing changes.
//!
//! The graph is party-level: a "skill" in the detectors' input is a publisher's set of skills
//! (the rollups M2.3 pays from are kept per invoker and publisher).

use crate::{App, AppError, AppResult, Principal};
use opchub_domain::Role;
use opchub_integrity as det;
use opchub_ledger::bills::FACTOR_KINDS;
use opchub_store::integrity::PairSum;
use opchub_store::integrity::{Finding, NewFinding, ScanStored};
use opchub_store::Actor;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

use utoipa::ToSchema;

/// What a scan looked at and did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanReport {
    pub year: i32,
    /// (invoker, publisher) pairs with paid calls.
    pub edges: usize,
    /// Identity signals considered (payout accounts, recorded people and phones, endpoint hosts).
    pub signals: usize,
    /// Findings per detector.
    pub by_detector: BTreeMap<String, usize>,
    pub stored: ScanStored,
}

/// What the money detectors read beside the paid-call graph (issue 18 item 2), as stored.
#[derive(Debug, Default)]
struct MoneyRows {
    /// Factor kinds (tokens, compute, data) per (OPC, counterparty).
    factor: Vec<PairSum>,
    /// `cooperation.payment` per (enterprise, OPC).
    payments: Vec<PairSum>,
    /// Community → its operator's party (a community named as counterparty is its operator's).
    community_operator: HashMap<String, String>,
    /// (publisher, day, calls, fen).
    daily: Vec<(String, String, i64, i64)>,
    /// (skill, publisher, approved at ms, price fen).
    prices: Vec<(String, String, i64, i64)>,
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn epoch_day(day: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(d.signed_duration_since(chrono::NaiveDate::default()).num_days())
}

/// The detectors' money inputs: the M2.2 discount (list − charged, qualified part) each
/// operator gave each OPC, the M2.4 payments (qualified part) of each enterprise to each OPC,
/// each publisher's paid calls per day and the prices its skills went live at (Beijing days).
fn money_input(rows: MoneyRows, input: &mut det::Input) {
    let mut discounts: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in &rows.factor {
        let op = rows.community_operator.get(&r.counterparty).unwrap_or(&r.counterparty);
        let given = (r.list_fen - r.uq_list_fen) - (r.charged_fen - r.uq_charged_fen);
        if given > 0 && op != &r.subject {
            *discounts.entry((op.clone(), r.subject.clone())).or_default() += given;
        }
    }
    input.discounts = discounts
        .into_iter()
        .map(|((operator, opc), discount_fen)| det::DiscountEdge {
            operator: det::PartyId(operator),
            opc: det::PartyId(opc),
            discount_fen,
        })
        .collect();
    input.payments = rows
        .payments
        .iter()
        .filter(|r| r.charged_fen - r.uq_charged_fen > 0)
        .map(|r| det::PaymentEdge {
            enterprise: det::PartyId(r.subject.clone()),
            opc: det::PartyId(r.counterparty.clone()),
            payments: r.events.max(0) as u64,
            paid_fen: r.charged_fen - r.uq_charged_fen,
        })
        .collect();
    input.daily = rows
        .daily
        .into_iter()
        .filter_map(|(publisher, day, calls, fen)| {
            Some(det::DailyCalls {
                publisher: det::PartyId(publisher),
                day: epoch_day(&day)?,
                calls: calls.max(0) as u64,
                paid_fen: fen.max(0),
            })
        })
        .collect();
    input.prices = rows
        .prices
        .into_iter()
        .filter_map(|(skill, publisher, at_ms, price_fen)| {
            Some(det::PricePoint {
                skill: det::SkillId(skill),
                publisher: det::PartyId(publisher),
                day: epoch_day(&opchub_ledger::event::day_of(at_ms))?,
                at_ms,
                price_fen,
            })
        })
        .collect();
}

/// Builds the detectors' input from the store (pure mapping; no scoring here).
fn input_of(
    edges: &[opchub_store::integrity::CallEdge],
    signals: &[opchub_store::integrity::PartySignal],
    times: Vec<opchub_store::integrity::CallTimes>,
) -> det::Input {
    det::Input {
        edges: edges
            .iter()
            .filter(|e| e.invoker != e.publisher && e.calls > 0)
            .map(|e| det::Edge {
                invoker: det::PartyId(e.invoker.clone()),
                publisher: det::PartyId(e.publisher.clone()),
                skill: det::SkillId(e.publisher.clone()),
                calls: e.calls.max(0) as u64,
                paid_fen: e.paid_fen.max(0),
            })
            .collect(),
        signals: signals.iter().filter_map(signal_of).collect(),
        // Edges are by (invoker, publisher): a series is one account's calls to one publisher.
        timings: times
            .into_iter()
            .map(|t| det::TimingSeries {
                party: det::PartyId(t.invoker),
                skill: Some(det::SkillId(t.publisher)),
                key: t.account,
                timestamps_ms: t.times_ms,
            })
            .collect(),
        ..det::Input::default()
    }
}

/// One stored signal as the detectors read it: a payout account's, a recorded person's or a
/// phone's keyed hash (issue 18 item 1), or a usage tie: a client fingerprint behind a party's
/// keys, the host of a publisher's endpoint.
fn signal_of(s: &opchub_store::integrity::PartySignal) -> Option<det::IdentitySignal> {
    let (kind, value) = match s.kind.as_str() {
        "bank_account" => (det::SignalKind::BankAccount, s.value.clone()),
        "person" => (det::SignalKind::Person, s.value.clone()),
        "phone" => (det::SignalKind::Phone, s.value.clone()),
        "address" => (det::SignalKind::Address, s.value.clone()),
        "client" => (det::SignalKind::ClientFingerprint, s.value.clone()),
        "endpoint_url" => (
            det::SignalKind::EndpointHost,
            url::Url::parse(&s.value).ok()?.host_str()?.to_ascii_lowercase(),
        ),
        _ => return None,
    };
    Some(det::IdentitySignal {
        party: det::PartyId(s.party.clone()),
        kind,
        value_hash: crate::crypto::sha256_hex(&format!("{}:{value}", kind.code())),
    })
}

/// An explanation as people read it: each party the detectors name by id is named by its
/// name (the finding keeps the ids in `parties` and its evidence). Longer ids first, so an id
/// inside another is never half replaced.
fn named(text: String, names: &BTreeMap<String, String>) -> String {
    let mut ids: Vec<(&String, &String)> = names.iter().filter(|(id, _)| text.contains(id.as_str())).collect();
    ids.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
    ids.into_iter().fold(text, |t, (id, name)| t.replace(id.as_str(), name))
}

/// Which ledger events a finding rests on (issue 18 item 5): its kinds and the (subject,
/// counterparty) pairs of its evidence as the ledger records them — invoker → publisher for
/// paid calls, enterprise → OPC for cooperation payments, OPC → operator or its communities
/// for the M2.2 discount, anyone → the publisher for a publisher's own revenue.
fn leaf_query(f: &det::Finding, community_operator: &HashMap<String, String>) -> (&'static [&'static str], Vec<(Option<String>, String)>) {
    let pairs = |rows: &[det::EvidenceRow]| rows.iter().map(|(a, b, _, _)| (Some(a.0.clone()), b.0.clone())).collect();
    match f.detector {
        det::Detector::RoundTrip => (&["cooperation.payment"], pairs(&f.evidence)),
        det::Detector::DiscountConcentration => (
            FACTOR_KINDS,
            f.evidence
                .iter()
                .flat_map(|(op, opc, _, _)| {
                    let served = community_operator.iter().filter(|(_, o)| *o == &op.0).map(|(c, _)| c.clone());
                    std::iter::once(op.0.clone())
                        .chain(served)
                        .map(|to| (Some(opc.0.clone()), to))
                        .collect::<Vec<_>>()
                })
                .collect(),
        ),
        det::Detector::PriceJump | det::Detector::VolumeAfterRise | det::Detector::PeriodEndSpike => {
            (&["skill.call"], f.parties.iter().map(|p| (None, p.0.clone())).collect())
        }
        _ => (&["skill.call"], pairs(&f.evidence)),
    }
}

fn stored_of(year: i32, f: det::Finding, names: &BTreeMap<String, String>, leaves: (Vec<i64>, i64)) -> NewFinding {
    NewFinding {
        leaves: leaves.0,
        leaves_total: leaves.1,
        year,
        detector: f.detector.code().to_string(),
        parties: f.parties.into_iter().map(|p| p.0).collect(),
        skills: f.skills.into_iter().map(|s| s.0).collect(),
        score_ppm: (f.score.clamp(0.0, 1.0) * 1_000_000.0).round() as i64,
        amount_at_stake_fen: f.amount_at_stake_fen,
        explanation_zh: named(f.explanation_zh, names),
        explanation_en: named(f.explanation_en, names),
        evidence: f
            .evidence
            .into_iter()
            .map(|(a, b, calls, fen)| (a.0, b.0, i64::try_from(calls).unwrap_or(i64::MAX), fen))
            .collect(),
    }
}

/// Scans `year` as `actor` (the committee, the CLI, the scheduled scan) and stores the findings.
pub async fn scan_as(app: &App, actor: &Actor, year: i32) -> AppResult<ScanReport> {
    if !(2000..=2100).contains(&year) {
        return Err(AppError::field("year", "out_of_range"));
    }
    let edges = app.store.integrity_call_edges(year).await?;
    let signals = app.store.integrity_signals().await?;
    let th = det::Thresholds::default();
    // Timing (issue 18 item 2): the 2,000 busiest series, each by its last 5,000 paid calls.
    let times = app
        .store
        .integrity_call_times(year, th.timing_min_calls.max(3) as i64, 5_000, 2_000)
        .await?;
    let mut input = input_of(&edges, &signals, times);
    let money = MoneyRows {
        factor: app.store.integrity_pair_sums(year, FACTOR_KINDS).await?,
        payments: app.store.integrity_pair_sums(year, &["cooperation.payment"]).await?,
        community_operator: app.store.bill_community_operators().await?,
        daily: app.store.integrity_daily_calls(year).await?,
        prices: app.store.integrity_price_points().await?,
    };
    money_input(money, &mut input);
    let found = tokio::task::spawn_blocking(move || det::scan(&input, &th))
        .await
        .map_err(|_| AppError::internal())?;
    let mut by_detector = BTreeMap::new();
    for f in &found {
        *by_detector.entry(f.detector.code().to_string()).or_insert(0) += 1;
    }
    let parties = app.store.settlement_parties().await?;
    let names: BTreeMap<String, String> = parties
        .opcs
        .iter()
        .chain(&parties.operators)
        .chain(&parties.enterprises)
        .filter(|p| !p.name.trim().is_empty())
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();
    let communities = app.store.bill_community_operators().await?;
    let mut new: Vec<NewFinding> = Vec::with_capacity(found.len());
    for f in found {
        let (kinds, pairs) = leaf_query(&f, &communities);
        let leaves = app.store.integrity_leaves(year, &pairs, kinds, 100).await?;
        new.push(stored_of(year, f, &names, leaves));
    }
    let stored = app.store.store_integrity_findings(actor, year, &new).await?;
    Ok(ScanReport {
        year,
        edges: edges.len(),
        signals: signals.len(),
        by_detector,
        stored,
    })
}

/// The scheduled scan inside `serve`: every `every`, this year (Beijing) is scanned as the
/// system, until the process ends. Findings are stored once per (year, detector, parties), so
/// replicas scanning at the same time cannot open a finding twice (the loser's scan fails on
/// the unique fingerprint and is logged; the next round refreshes).
pub fn spawn_scheduled_scan(app: App, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let year = chrono::Datelike::year(&opchub_domain::time::beijing_today());
            match scan_as(&app, &Actor::system(), year).await {
                Ok(r) if r.stored.opened > 0 => tracing::warn!(year, opened = r.stored.opened, "integrity scan opened findings"),
                Ok(_) => {}
                Err(e) => tracing::error!(code = %e.code, "scheduled integrity scan failed"),
            }
        }
    })
}

pub async fn scan_for(app: &App, p: &Principal, year: i32) -> AppResult<ScanReport> {
    scan_as(app, &p.actor(), year).await
}

/// Whether the caller reads every finding (the committee, the auditor) or only those naming
/// one of its own parties (`Some(parties)`).
async fn own_parties(app: &App, p: &Principal) -> AppResult<Option<Vec<String>>> {
    match p.role() {
        Role::Committee | Role::Auditor => Ok(None),
        _ => Ok(Some(app.store.parties_owned_by(&p.user.id).await?)),
    }
}

fn names_one_of(f: &Finding, mine: &Option<Vec<String>>) -> bool {
    mine.as_ref().is_none_or(|m| f.parties.iter().any(|x| m.contains(x)))
}

/// Findings the caller may read: all of them for the committee and the auditor; a party's own
/// (where it is named) for a beneficiary.
pub async fn findings_for(app: &App, p: &Principal, year: Option<i32>) -> AppResult<Vec<Finding>> {
    let mine = own_parties(app, p).await?;
    let all = app.store.integrity_findings(year).await?;
    Ok(all.into_iter().filter(|f| names_one_of(f, &mine)).collect())
}

/// One finding, if the caller may read it (others get `not_found`).
pub async fn finding_for(app: &App, p: &Principal, id: &str) -> AppResult<Finding> {
    let f = app.store.integrity_finding(id).await?;
    if names_one_of(&f, &own_parties(app, p).await?) {
        Ok(f)
    } else {
        Err(AppError::not_found())
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// `uphold` or `dismiss`.
    pub decision: String,
    /// Why (required; shown to the parties and kept in the audit log).
    pub reason: String,
}

/// The committee upholds or dismisses an open finding.
pub async fn decide_for(app: &App, p: &Principal, id: &str, d: &Decide) -> AppResult<Finding> {
    let uphold = match d.decision.as_str() {
        "uphold" => true,
        "dismiss" => false,
        _ => return Err(AppError::field("decision", "unknown_decision")),
    };
    let reason = d.reason.trim();
    if reason.is_empty() {
        return Err(AppError::field("reason", "required"));
    }
    if reason.chars().count() > 2000 {
        return Err(AppError::field("reason", "too_long"));
    }
    Ok(app.store.decide_integrity_finding(&p.actor(), id, uphold, reason).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The party's statement (申辩).
    pub statement: String,
}

/// A flagged party answers an open finding.
pub async fn answer_for(app: &App, p: &Principal, id: &str, a: &Answer) -> AppResult<Finding> {
    let s = a.statement.trim();
    if s.is_empty() {
        return Err(AppError::field("statement", "required"));
    }
    if s.chars().count() > 4000 {
        return Err(AppError::field("statement", "too_long"));
    }
    Ok(app.store.answer_integrity_finding(&p.actor(), id, s).await?)
}

/// Names of the parties findings can name (OPCs, community operators, enterprises), by id.
pub async fn party_names(app: &App) -> AppResult<BTreeMap<String, String>> {
    let p = app.store.settlement_parties().await?;
    Ok(p.opcs
        .iter()
        .chain(p.operators.iter())
        .chain(p.enterprises.iter())
        .map(|x| (x.id.clone(), x.name.clone()))
        .collect())
}

/// One exported row of a finding (names resolved, amounts in fen and yuan).
struct ExportRow {
    id: String,
    year: i64,
    detector: String,
    parties: String,
    status: String,
    fen: i64,
    score: f64,
    explanation: String,
    reason: String,
    statement: String,
}

/// A leading =, +, - or @ would make a cell a formula in a spreadsheet: such text gets a quote.
fn as_text(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_string()
    }
}

/// The findings the caller may read as CSV (default) or XLSX, one row per finding with the
/// detector, the parties by name, the status, the amount at stake in yuan (a number cell in
/// the XLSX) and in fen, the score, the explanation, the decision's reason and the statement.
/// `t` looks texts up in the caller's language (headers, detector and status names).
pub async fn export_for(
    app: &App,
    p: &Principal,
    year: Option<i32>,
    format: Option<&str>,
    t: &(dyn Fn(&str) -> String + Sync),
) -> AppResult<crate::settlement::Export> {
    let format = format.unwrap_or("csv");
    if !["csv", "xlsx"].contains(&format) {
        return Err(AppError::field("format", "invalid"));
    }
    let list = findings_for(app, p, year).await?;
    let names = party_names(app).await?;
    let en = t("findings.lang") == "en";
    let rows: Vec<ExportRow> = list
        .into_iter()
        .map(|f| ExportRow {
            parties: f
                .parties
                .iter()
                .map(|x| names.get(x).cloned().unwrap_or_else(|| x.clone()))
                .collect::<Vec<_>>()
                .join(" ↔ "),
            detector: t(&format!("findings.detector_{}", f.detector)),
            status: t(&format!("findings.status_{}", f.status)),
            fen: f.amount_at_stake_fen,
            score: f.score_ppm as f64 / 1_000_000.0,
            explanation: if en { f.explanation_en } else { f.explanation_zh },
            reason: f.decision_reason.unwrap_or_default(),
            statement: f.statement.unwrap_or_default(),
            id: f.id,
            year: f.year,
        })
        .collect();
    let head: Vec<String> = [
        "findings.id",
        "settle.year",
        "findings.detector",
        "findings.parties",
        "settle.status",
        "findings.at_stake",
        "findings.at_stake_fen",
        "findings.score",
        "findings.explanation",
        "findings.reason",
        "findings.statement",
    ]
    .iter()
    .map(|k| t(k))
    .collect();
    let total: i64 = rows.iter().map(|r| r.fen).sum();
    let (bytes, content_type) = if format == "csv" {
        let csv = (|| -> Result<Vec<u8>, csv::Error> {
            let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
            w.write_record(&head)?;
            for r in &rows {
                w.write_record([
                    r.id.clone(),
                    r.year.to_string(),
                    r.detector.clone(),
                    as_text(&r.parties),
                    r.status.clone(),
                    opchub_domain::Money::from_fen(r.fen).to_string(),
                    r.fen.to_string(),
                    format!("{:.2}", r.score),
                    as_text(&r.explanation),
                    as_text(&r.reason),
                    as_text(&r.statement),
                ])?;
            }
            let mut last = vec![String::new(); head.len()];
            last[0] = t("findings.total");
            last[5] = opchub_domain::Money::from_fen(total).to_string();
            last[6] = total.to_string();
            w.write_record(&last)?;
            w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
        })()
        .map_err(|e| AppError::internal_from("csv export", e))?;
        (csv, "text/csv; charset=utf-8")
    } else {
        let x = (|| -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
            let mut wb = rust_xlsxwriter::Workbook::new();
            let ws = wb.add_worksheet();
            ws.set_name("findings")?;
            let yuan = rust_xlsxwriter::Format::new().set_num_format("#,##0.00");
            for (c, h) in head.iter().enumerate() {
                ws.write_string(0, u16::try_from(c).unwrap_or_default(), h)?;
            }
            for (i, r) in rows.iter().enumerate() {
                let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
                ws.write_string(row, 0, &r.id)?;
                ws.write_number(row, 1, r.year as f64)?;
                ws.write_string(row, 2, &r.detector)?;
                ws.write_string(row, 3, &r.parties)?;
                ws.write_string(row, 4, &r.status)?;
                // Yuan from integer fen, rounded once here; the fen column is exact.
                ws.write_number_with_format(row, 5, r.fen as f64 / 100.0, &yuan)?;
                ws.write_number(row, 6, r.fen as f64)?;
                ws.write_number(row, 7, (r.score * 100.0).round() / 100.0)?;
                ws.write_string(row, 8, &r.explanation)?;
                ws.write_string(row, 9, &r.reason)?;
                ws.write_string(row, 10, &r.statement)?;
            }
            let last = u32::try_from(rows.len() + 1).unwrap_or(u32::MAX);
            ws.write_string(last, 0, t("findings.total"))?;
            ws.write_number_with_format(last, 5, total as f64 / 100.0, &yuan)?;
            ws.write_number(last, 6, total as f64)?;
            wb.save_to_buffer()
        })()
        .map_err(|e| AppError::internal_from("xlsx export", e))?;
        (x, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    };
    Ok(crate::settlement::Export {
        bytes,
        content_type,
        file_name: format!(
            "{}-{}.{format}",
            t("findings.file"),
            year.map(|y| y.to_string()).unwrap_or_else(|| "all".into())
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use opchub_store::integrity::CallEdge;

    #[test]
    fn self_calls_are_not_edges_and_bank_accounts_are_hashed() {
        let edges = vec![
            CallEdge {
                invoker: "a".into(),
                publisher: "a".into(),
                calls: 5,
                paid_fen: 10,
            },
            CallEdge {
                invoker: "a".into(),
                publisher: "b".into(),
                calls: 5,
                paid_fen: 10,
            },
        ];
        let signals = vec![opchub_store::integrity::PartySignal {
            party: "a".into(),
            kind: "bank_account".into(),
            value: "6222020200001234".into(),
        }];
        let i = input_of(&edges, &signals, vec![]);
        assert_eq!(i.edges.len(), 1);
        assert!(!i.signals[0].value_hash.contains("6222020200001234"));
    }
}
