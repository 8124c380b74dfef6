//! Integrity findings (issue 18): the paid-call graph of a year read from the rollups, the
//! identity signals the platform holds, and findings with their review (uphold or dismiss, by
//! the committee) and the flagged parties' statements.

use crate::audit::{record_after, record_before_after, Actor};
use crate::notifications::notify;
use crate::{new_id, now_ms, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

/// One (invoker, publisher) pair of the year's paid skill calls (M2.3's basis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEdge {
    pub invoker: String,
    pub publisher: String,
    pub calls: i64,
    pub paid_fen: i64,
}

/// One (subject, counterparty) pair's sums of one ledger kind over a year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSum {
    pub subject: String,
    pub counterparty: String,
    pub events: i64,
    pub list_fen: i64,
    pub charged_fen: i64,
    /// The part of the sums the platform marked not qualified.
    pub uq_list_fen: i64,
    pub uq_charged_fen: i64,
}

/// A party and a value it shares with others (a payout bank account, …), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartySignal {
    pub party: String,
    /// `bank_account` (the number), `person` / `phone` (keyed hashes), `client` (a key's
    /// client fingerprint), `endpoint_url` (an approved version's upstream URL).
    pub kind: String,
    pub value: String,
}

/// One account's paid calls to one publisher, by time (the timing detector's input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTimes {
    pub invoker: String,
    /// The invoking account's username.
    pub account: String,
    pub publisher: String,
    pub times_ms: Vec<i64>,
}

/// A finding as a scan produced it, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFinding {
    pub year: i32,
    pub detector: String,
    /// Sorted.
    pub parties: Vec<String>,
    pub skills: Vec<String>,
    /// 0..=1_000_000.
    pub score_ppm: i64,
    pub amount_at_stake_fen: i64,
    pub explanation_zh: String,
    pub explanation_en: String,
    /// (invoker, publisher, calls, fen).
    pub evidence: Vec<(String, String, i64, i64)>,
    /// The ledger events it rests on: the first leaf indices, and how many in all.
    pub leaves: Vec<i64>,
    pub leaves_total: i64,
}

/// A stored finding.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Finding {
    pub id: String,
    pub year: i64,
    /// `reciprocity`, `cycle`, `dense_block`, `related_parties`, `concentration`, `timing`.
    pub detector: String,
    pub parties: Vec<String>,
    pub skills: Vec<String>,
    /// 0..=1_000_000 (parts per million).
    pub score_ppm: i64,
    pub amount_at_stake_fen: i64,
    pub explanation_zh: String,
    pub explanation_en: String,
    /// Rows of (invoker, publisher, calls, fen).
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub evidence: Vec<(String, String, i64, i64)>,
    /// The ledger events the finding rests on (issue 18 item 5): the first 100 leaf indices,
    /// each provable against a signed checkpoint (`/api/v1/ledger/proofs/inclusion`).
    pub leaves: Vec<i64>,
    /// How many ledger events it rests on in all.
    pub leaves_total: i64,
    /// `open` → `upheld` / `dismissed` (two committee members: a proposal, then a confirmation).
    pub status: String,
    /// While open: the decision a first committee member proposed (`uphold` / `dismiss`), by
    /// whom, why and when; a different member confirming it decides the finding.
    pub proposed_decision: Option<String>,
    pub proposed_by: Option<String>,
    pub proposed_reason: Option<String>,
    pub proposed_at: Option<i64>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub decision_reason: Option<String>,
    /// The flagged party's answer (申辩), if any.
    pub statement: Option<String>,
    pub statement_by: Option<String>,
    pub statement_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a scan did to the stored findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ScanStored {
    /// New open findings.
    pub opened: i64,
    /// Open findings whose numbers were refreshed.
    pub refreshed: i64,
    /// Findings already decided, left as they were.
    pub decided: i64,
}

const COLS: &str = "id, year, detector, parties, skills, score_ppm, amount_at_stake_fen, explanation_zh, explanation_en, evidence, \
                    status, decided_by, decided_at, decision_reason, statement, statement_by, statement_at, created_at, updated_at, \
                    proposed_decision, proposed_by, proposed_reason, proposed_at, leaves, leaves_total";

fn finding_from(r: &AnyRow) -> Result<Finding> {
    let json = |c: &str| -> Result<String> { Ok(r.try_get::<String, _>(c)?) };
    Ok(Finding {
        id: r.try_get("id")?,
        year: r.try_get("year")?,
        detector: r.try_get("detector")?,
        parties: serde_json::from_str(&json("parties")?).unwrap_or_default(),
        skills: serde_json::from_str(&json("skills")?).unwrap_or_default(),
        score_ppm: r.try_get("score_ppm")?,
        amount_at_stake_fen: r.try_get("amount_at_stake_fen")?,
        explanation_zh: r.try_get("explanation_zh")?,
        explanation_en: r.try_get("explanation_en")?,
        evidence: serde_json::from_str(&json("evidence")?).unwrap_or_default(),
        leaves: serde_json::from_str(&json("leaves")?).unwrap_or_default(),
        leaves_total: r.try_get("leaves_total")?,
        status: r.try_get("status")?,
        proposed_decision: r.try_get("proposed_decision")?,
        proposed_by: r.try_get("proposed_by")?,
        proposed_reason: r.try_get("proposed_reason")?,
        proposed_at: r.try_get("proposed_at")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        decision_reason: r.try_get("decision_reason")?,
        statement: r.try_get("statement")?,
        statement_by: r.try_get("statement_by")?,
        statement_at: r.try_get("statement_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Where a party's owner is kept: (table, owner column) for OPCs, communities and enterprises.
const OWNERS: [(&str, &str); 3] = [
    ("opcs", "founder_user_id"),
    ("communities", "operator_user_id"),
    ("enterprises", "owner_user_id"),
];

fn fingerprint(f: &NewFinding) -> String {
    format!("{}:{}:{}", f.year, f.detector, f.parties.join(","))
}

impl Store {
    /// The year's paid skill calls per (invoker, publisher), from the monthly rollups (both the
    /// qualified and the not-qualified part: a ring is a ring whatever the platform marked).
    pub async fn integrity_call_edges(&self, year: i32) -> Result<Vec<CallEdge>> {
        let rows = sqlx::query(
            "SELECT subject, counterparty, CAST(SUM(quantity) AS BIGINT) AS calls, CAST(SUM(charged_fen) AS BIGINT) AS paid FROM ledger_rollups_monthly \
             WHERE kind = 'skill.call' AND month >= $1 AND month <= $2 GROUP BY subject, counterparty",
        )
        .bind(format!("{year:04}-01"))
        .bind(format!("{year:04}-12"))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CallEdge {
                    invoker: r.try_get("subject")?,
                    publisher: r.try_get("counterparty")?,
                    calls: r.try_get("calls")?,
                    paid_fen: r.try_get("paid")?,
                })
            })
            .collect()
    }

    /// Paid calls' times for the timing detector (issue 18 item 2): per (invoker party,
    /// invoker account, publisher) with at least `min_calls` paid calls in `year`, the most
    /// recent `per_series` call times, oldest first. At most `max_series` series, the busiest
    /// first — bounded, so a scan's cost does not grow with the year's volume of calls.
    pub async fn integrity_call_times(&self, year: i32, min_calls: i64, per_series: i64, max_series: i64) -> Result<Vec<CallTimes>> {
        let (from, to) = (format!("{year:04}-01-01"), format!("{:04}-01-01", year + 1));
        let series = sqlx::query(
            "SELECT c.invoker_party, c.invoker_user_id, c.publisher_party, u.username, CAST(COUNT(*) AS BIGINT) AS n \
             FROM skill_calls c JOIN users u ON u.id = c.invoker_user_id \
             WHERE c.day >= $1 AND c.day < $2 AND c.charged_fen > 0 AND c.invoker_party <> c.publisher_party \
             GROUP BY c.invoker_party, c.invoker_user_id, c.publisher_party, u.username HAVING COUNT(*) >= $3 \
             ORDER BY n DESC, c.invoker_party, c.publisher_party LIMIT $4",
        )
        .bind(&from)
        .bind(&to)
        .bind(min_calls)
        .bind(max_series)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(series.len());
        for r in series {
            let invoker: String = r.try_get("invoker_party")?;
            let user: String = r.try_get("invoker_user_id")?;
            let publisher: String = r.try_get("publisher_party")?;
            let mut times: Vec<i64> = sqlx::query_scalar(
                "SELECT created_at FROM skill_calls WHERE invoker_party = $1 AND day >= $2 AND day < $3 \
                 AND invoker_user_id = $4 AND publisher_party = $5 AND charged_fen > 0 ORDER BY created_at DESC LIMIT $6",
            )
            .bind(&invoker)
            .bind(&from)
            .bind(&to)
            .bind(&user)
            .bind(&publisher)
            .bind(per_series)
            .fetch_all(&self.pool)
            .await?;
            times.reverse();
            out.push(CallTimes {
                invoker,
                account: r.try_get("username")?,
                publisher,
                times_ms: times,
            });
        }
        Ok(out)
    }

    /// The year's sums per (subject, counterparty) of `kinds` from the monthly rollups (issue 18
    /// item 2: the M2.2 discount an operator gave each OPC, the M2.4 payments of an enterprise to
    /// each OPC). Pairs of a party with itself are left out.
    pub async fn integrity_pair_sums(&self, year: i32, kinds: &[&str]) -> Result<Vec<PairSum>> {
        let mut out = vec![];
        for kind in kinds {
            let rows = sqlx::query(
                "SELECT subject, counterparty, CAST(SUM(events) AS BIGINT) AS events, CAST(SUM(list_fen) AS BIGINT) AS list, \
                 CAST(SUM(charged_fen) AS BIGINT) AS charged, CAST(SUM(uq_list_fen) AS BIGINT) AS uq_list, \
                 CAST(SUM(uq_charged_fen) AS BIGINT) AS uq_charged FROM ledger_rollups_monthly \
                 WHERE kind = $1 AND month >= $2 AND month <= $3 AND subject <> counterparty GROUP BY subject, counterparty",
            )
            .bind(*kind)
            .bind(format!("{year:04}-01"))
            .bind(format!("{year:04}-12"))
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                out.push(PairSum {
                    subject: r.try_get("subject")?,
                    counterparty: r.try_get("counterparty")?,
                    events: r.try_get("events")?,
                    list_fen: r.try_get("list")?,
                    charged_fen: r.try_get("charged")?,
                    uq_list_fen: r.try_get("uq_list")?,
                    uq_charged_fen: r.try_get("uq_charged")?,
                });
            }
        }
        Ok(out)
    }

    /// The ledger events of `year` of `kinds` between each (subject, counterparty) pair (a
    /// subject `None`: anyone's, to that counterparty), for a finding to name (issue 18 item
    /// 5): the first `limit` leaf indices in leaf order, and how many in all. Corrections are
    /// included (they are events of the same kind between the same parties).
    pub async fn integrity_leaves(
        &self,
        year: i32,
        pairs: &[(Option<String>, String)],
        kinds: &[&str],
        limit: usize,
    ) -> Result<(Vec<i64>, i64)> {
        let (from, to) = (format!("{year:04}-01"), format!("{year:04}-12"));
        let kinds_sql = kinds
            .iter()
            .map(|k| format!("'{}'", k.replace('\'', "")))
            .collect::<Vec<_>>()
            .join(",");
        let (mut leaves, mut total) = (Vec::new(), 0i64);
        for (subject, counterparty) in pairs {
            let (filter, count_sql) = match subject {
                Some(_) => (
                    "subject = $1 AND counterparty = $2",
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_events WHERE subject = $1 AND counterparty = $2",
                ),
                None => (
                    "counterparty = $2 AND subject <> $1",
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_events WHERE counterparty = $2 AND subject <> $1",
                ),
            };
            let who = subject.clone().unwrap_or_else(|| counterparty.clone());
            let n: i64 = sqlx::query_scalar(&format!("{count_sql} AND kind IN ({kinds_sql}) AND period >= $3 AND period <= $4"))
                .bind(&who)
                .bind(counterparty)
                .bind(&from)
                .bind(&to)
                .fetch_one(&self.pool)
                .await?;
            total += n;
            if n > 0 && leaves.len() < limit {
                let got: Vec<i64> = sqlx::query_scalar(&format!(
                    "SELECT leaf_index FROM ledger_events WHERE {filter} AND kind IN ({kinds_sql}) AND period >= $3 AND period <= $4 \
                     ORDER BY leaf_index LIMIT $5"
                ))
                .bind(&who)
                .bind(counterparty)
                .bind(&from)
                .bind(&to)
                .bind((limit - leaves.len()) as i64)
                .fetch_all(&self.pool)
                .await?;
                leaves.extend(got);
            }
        }
        leaves.sort_unstable();
        leaves.dedup();
        Ok((leaves, total))
    }

    /// Paid skill calls each publisher received per day of `year` (from the daily rollups;
    /// calls to one's own skills left out): (publisher, `YYYY-MM-DD`, calls, fen).
    pub async fn integrity_daily_calls(&self, year: i32) -> Result<Vec<(String, String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT counterparty, day, CAST(SUM(quantity) AS BIGINT) AS calls, CAST(SUM(charged_fen) AS BIGINT) AS paid \
             FROM ledger_rollups WHERE kind = 'skill.call' AND day >= $1 AND day < $2 AND subject <> counterparty \
             AND charged_fen > 0 GROUP BY counterparty, day",
        )
        .bind(format!("{year:04}-01-01"))
        .bind(format!("{:04}-01-01", year + 1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("counterparty")?,
                    r.try_get("day")?,
                    r.try_get("calls")?,
                    r.try_get("paid")?,
                ))
            })
            .collect()
    }

    /// Every price a skill went live at: (skill, publisher party, when its version was
    /// approved in ms, price per call in fen), for the price detectors (issue 18 item 2).
    pub async fn integrity_price_points(&self) -> Result<Vec<(String, String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT s.id, s.publisher_party, v.decided_at, v.price_fen FROM skills s JOIN skill_versions v ON v.skill_id = s.id \
             WHERE v.decided_at IS NOT NULL AND v.status IN ('approved', 'delisted') ORDER BY s.id, v.decided_at, v.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("publisher_party")?,
                    r.try_get("decided_at")?,
                    r.try_get("price_fen")?,
                ))
            })
            .collect()
    }

    /// The identity signals the platform holds: the payout bank account of every OPC, community
    /// company and enterprise that recorded one (the keyed hash of its number).
    pub async fn integrity_signals(&self) -> Result<Vec<PartySignal>> {
        let mut out = vec![];
        for table in ["opcs", "communities", "enterprises"] {
            let rows = sqlx::query(&format!(
                "SELECT id, bank_account_hash FROM {table} WHERE bank_account_hash IS NOT NULL"
            ))
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                out.push(PartySignal {
                    party: r.try_get("id")?,
                    kind: "bank_account".into(),
                    value: r.try_get("bank_account_hash")?,
                });
            }
        }
        // Who is who (issue 18 item 1): recorded people and phones, by their keyed hashes.
        for (party, kind, hash) in self.person_signals().await? {
            out.push(PartySignal {
                party,
                kind: kind.into(),
                value: hash,
            });
        }
        // Usage ties: the clients behind the parties' API keys (the key's owner's OPC or
        // company, else the owner: a community operator)…
        for r in sqlx::query(
            "SELECT DISTINCT COALESCE((SELECT o.id FROM opcs o WHERE o.founder_user_id = k.user_id), \
             (SELECT e.id FROM enterprises e WHERE e.owner_user_id = k.user_id), k.user_id) AS party, c.fingerprint AS fp \
             FROM api_key_clients c JOIN api_keys k ON k.id = c.api_key_id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            out.push(PartySignal {
                party: r.try_get("party")?,
                kind: "client".into(),
                value: r.try_get("fp")?,
            });
        }
        // …and the endpoints publishers' approved versions call (the caller reads the host).
        for r in sqlx::query(
            "SELECT DISTINCT s.publisher_party AS party, v.endpoint_url AS url FROM skills s \
             JOIN skill_versions v ON v.skill_id = s.id WHERE v.status = 'approved' AND v.endpoint_url IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?
        {
            out.push(PartySignal {
                party: r.try_get("party")?,
                kind: "endpoint_url".into(),
                value: r.try_get("url")?,
            });
        }
        Ok(out)
    }

    /// Stores a scan's findings for `year`: a new one opens (its parties' owners are notified),
    /// an open one is refreshed with the new numbers, a decided one is left as decided.
    pub async fn store_integrity_findings(&self, actor: &Actor, year: i32, found: &[NewFinding]) -> Result<ScanStored> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        let mut out = ScanStored::default();
        for f in found.iter().filter(|f| f.year == year) {
            let fp = fingerprint(f);
            let existing: Option<(String, String)> = sqlx::query("SELECT id, status FROM integrity_findings WHERE fingerprint = $1")
                .bind(&fp)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| Ok::<_, sqlx::Error>((r.try_get("id")?, r.try_get("status")?)))
                .transpose()?;
            let evidence = serde_json::to_string(&f.evidence).unwrap_or_else(|_| "[]".into());
            match existing {
                Some((_, status)) if status != "open" => out.decided += 1,
                Some((id, _)) => {
                    sqlx::query(
                        "UPDATE integrity_findings SET score_ppm = $1, amount_at_stake_fen = $2, explanation_zh = $3, explanation_en = $4, \
                         evidence = $5, skills = $6, updated_at = $7, leaves = $9, leaves_total = $10 WHERE id = $8 AND status = 'open'",
                    )
                    .bind(f.score_ppm)
                    .bind(f.amount_at_stake_fen)
                    .bind(&f.explanation_zh)
                    .bind(&f.explanation_en)
                    .bind(&evidence)
                    .bind(serde_json::to_string(&f.skills).unwrap_or_else(|_| "[]".into()))
                    .bind(now)
                    .bind(&id)
                    .bind(serde_json::to_string(&f.leaves).unwrap_or_else(|_| "[]".into()))
                    .bind(f.leaves_total)
                    .execute(&mut *tx)
                    .await?;
                    out.refreshed += 1;
                }
                None => {
                    let id = new_id();
                    sqlx::query(
                        "INSERT INTO integrity_findings (id, year, detector, fingerprint, parties, skills, score_ppm, amount_at_stake_fen, \
                         explanation_zh, explanation_en, evidence, status, created_at, updated_at, leaves, leaves_total) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open', $12, $12, $13, $14)",
                    )
                    .bind(&id)
                    .bind(i64::from(year))
                    .bind(&f.detector)
                    .bind(&fp)
                    .bind(serde_json::to_string(&f.parties).unwrap_or_else(|_| "[]".into()))
                    .bind(serde_json::to_string(&f.skills).unwrap_or_else(|_| "[]".into()))
                    .bind(f.score_ppm)
                    .bind(f.amount_at_stake_fen)
                    .bind(&f.explanation_zh)
                    .bind(&f.explanation_en)
                    .bind(&evidence)
                    .bind(now)
                    .bind(serde_json::to_string(&f.leaves).unwrap_or_else(|_| "[]".into()))
                    .bind(f.leaves_total)
                    .execute(&mut *tx)
                    .await?;
                    for owner in owners_of(&mut tx, &f.parties).await? {
                        notify(&mut tx, &owner, "integrity_finding", "integrity_finding", &id, &f.detector).await?;
                    }
                    record_after(
                        &mut tx,
                        actor,
                        "integrity.finding_opened",
                        "integrity_finding",
                        &id,
                        serde_json::json!({ "detector": f.detector, "parties": f.parties, "amount_at_stake_fen": f.amount_at_stake_fen }),
                        format!("{} {}", f.detector, f.parties.join(" ↔ ")),
                    )
                    .await?;
                    out.opened += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Findings of `year` (all years when `None`), largest amount at stake first.
    pub async fn integrity_findings(&self, year: Option<i32>) -> Result<Vec<Finding>> {
        let rows = match year {
            Some(y) => {
                sqlx::query(&format!(
                    "SELECT {COLS} FROM integrity_findings WHERE year = $1 ORDER BY amount_at_stake_fen DESC, id"
                ))
                .bind(i64::from(y))
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLS} FROM integrity_findings ORDER BY year DESC, amount_at_stake_fen DESC, id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(finding_from).collect()
    }

    pub async fn integrity_finding(&self, id: &str) -> Result<Finding> {
        let r = sqlx::query(&format!("SELECT {COLS} FROM integrity_findings WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        finding_from(&r)
    }

    /// A committee member's decision on an open finding (two signatures): the first proposes
    /// (the finding stays open and its lines held); a different member giving the same decision
    /// decides it (`upheld` / `dismissed`, notified to the parties' owners). The proposer
    /// confirming their own proposal is `second_member_required`; another member giving the
    /// other decision replaces the proposal. Every step is conditional on what was read, so two
    /// members acting at once cannot both decide; a decided finding is `finding_decided`.
    pub async fn decide_integrity_finding(&self, actor: &Actor, id: &str, uphold: bool, reason: &str) -> Result<Finding> {
        let by = actor.user_id.clone().ok_or(StoreError::Invalid {
            field: "actor",
            code: "required",
        })?;
        let mut tx = self.begin().await?;
        let now = now_ms();
        let decision = if uphold { "uphold" } else { "dismiss" };
        let Some(row) = sqlx::query("SELECT status, proposed_decision, proposed_by, proposed_reason FROM integrity_findings WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Err(StoreError::NotFound);
        };
        let status: String = row.try_get("status")?;
        let proposed: Option<String> = row.try_get("proposed_decision")?;
        let proposer: Option<String> = row.try_get("proposed_by")?;
        let proposed_reason: Option<String> = row.try_get("proposed_reason")?;
        if status != "open" {
            return Err(StoreError::Conflict("finding_decided"));
        }
        let confirms = proposed.as_deref() == Some(decision);
        if confirms && proposer.as_deref() == Some(by.as_str()) {
            return Err(StoreError::Conflict("second_member_required"));
        }
        let (action, after, summary) = if confirms {
            let final_status = if uphold { "upheld" } else { "dismissed" };
            // The proposer's reason is the decision's; the confirmer's is kept in the audit log.
            let decided_reason = proposed_reason.clone().unwrap_or_else(|| reason.to_string());
            let n = sqlx::query(
                "UPDATE integrity_findings SET status = $1, decided_by = $2, decided_at = $3, decision_reason = $4, updated_at = $3 \
                 WHERE id = $5 AND status = 'open' AND proposed_decision = $6 AND proposed_by = $7",
            )
            .bind(final_status)
            .bind(&by)
            .bind(now)
            .bind(&decided_reason)
            .bind(id)
            .bind(decision)
            .bind(proposer.clone().unwrap_or_default())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict("finding_changed"));
            }
            (
                "integrity.finding_decided",
                serde_json::json!({ "status": final_status, "reason": decided_reason, "proposed_by": proposer, "confirmed_by": by, "confirmation": reason }),
                format!("{final_status}: {decided_reason}"),
            )
        } else {
            let n = sqlx::query(
                "UPDATE integrity_findings SET proposed_decision = $1, proposed_by = $2, proposed_reason = $3, proposed_at = $4, updated_at = $4 \
                 WHERE id = $5 AND status = 'open' AND COALESCE(proposed_decision, '') = $6 AND COALESCE(proposed_by, '') = $7",
            )
            .bind(decision)
            .bind(&by)
            .bind(reason)
            .bind(now)
            .bind(id)
            .bind(proposed.clone().unwrap_or_default())
            .bind(proposer.clone().unwrap_or_default())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict("finding_changed"));
            }
            (
                "integrity.finding_proposed",
                serde_json::json!({ "status": "open", "proposed_decision": decision, "reason": reason }),
                format!("proposed {decision}: {reason}"),
            )
        };
        let r = sqlx::query(&format!("SELECT {COLS} FROM integrity_findings WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let f = finding_from(&r)?;
        if confirms {
            for owner in owners_of(&mut tx, &f.parties).await? {
                notify(&mut tx, &owner, "integrity_decided", "integrity_finding", id, &f.status).await?;
            }
        }
        record_before_after(
            &mut tx,
            actor,
            action,
            "integrity_finding",
            id,
            serde_json::json!({ "status": "open", "proposed_decision": proposed, "proposed_by": proposer }),
            after,
            summary,
        )
        .await?;
        tx.commit().await?;
        Ok(f)
    }

    /// A flagged party's answer (申辩) to an open finding, by the owner of one of its parties;
    /// a later statement replaces the earlier one.
    pub async fn answer_integrity_finding(&self, actor: &Actor, id: &str, statement: &str) -> Result<Finding> {
        let by = actor.user_id.clone().ok_or(StoreError::Invalid {
            field: "actor",
            code: "required",
        })?;
        let mut tx = self.begin().await?;
        let r = sqlx::query(&format!("SELECT {COLS} FROM integrity_findings WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let f = finding_from(&r)?;
        if !owners_of(&mut tx, &f.parties).await?.contains(&by) {
            return Err(StoreError::NotFound);
        }
        if f.status != "open" {
            return Err(StoreError::Conflict("finding_decided"));
        }
        let now = now_ms();
        sqlx::query("UPDATE integrity_findings SET statement = $1, statement_by = $2, statement_at = $3, updated_at = $3 WHERE id = $4")
            .bind(statement)
            .bind(&by)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record_before_after(
            &mut tx,
            actor,
            "integrity.statement",
            "integrity_finding",
            id,
            serde_json::json!({ "statement": f.statement }),
            serde_json::json!({ "statement": statement }),
            format!("statement on {}", f.detector),
        )
        .await?;
        let r = sqlx::query(&format!("SELECT {COLS} FROM integrity_findings WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let out = finding_from(&r)?;
        tx.commit().await?;
        Ok(out)
    }

    /// The parties `user_id` owns (as founder, operator or enterprise owner).
    pub async fn parties_owned_by(&self, user_id: &str) -> Result<Vec<String>> {
        let mut out = vec![];
        for (table, col) in OWNERS {
            let ids: Vec<String> = sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE {col} = $1"))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
            out.extend(ids);
        }
        Ok(out)
    }
}

/// The owners (founder, operator, enterprise owner) of `parties`; a party id is an OPC, a
/// community or an enterprise id — or, for M2.2/M1.1 lines, the operator's user id itself.
async fn owners_of(tx: &mut crate::Tx, parties: &[String]) -> Result<Vec<String>> {
    let mut out = vec![];
    for p in parties {
        for (table, col) in OWNERS {
            let o: Option<String> = sqlx::query_scalar(&format!("SELECT {col} FROM {table} WHERE id = $1"))
                .bind(p)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(o) = o {
                out.push(o);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
