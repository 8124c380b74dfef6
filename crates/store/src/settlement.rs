//! 免申即享 settlement storage (issue 6): versioned F3 exclusion lists, the S3 register of other
//! policies' grants, settlement batches with one line per (clause, beneficiary), the
//! beneficiary's confirmation (意愿确认), and approval, which consumes the cap ledger in the
//! same transaction that marks the batch approved — so a batch is approved once, and no
//! approval, concurrent or not, can push a beneficiary past a cap.

use crate::audit::{record_after, record_before_after, Actor};
use crate::dialect::multi_insert;
use crate::ledger::pow2_chunks;
use crate::{is_unique_violation, new_id, now_ms, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::BTreeMap;

/// The F3 lists the platform imports, and the fact each one answers.
pub const EXCLUSION_KINDS: &[(&str, &str)] = &[
    ("restricted_industry", "restricted_industry"),
    ("no_support_sanction", "no_support_sanction"),
    ("safety_accident", "safety_accident_in_window"),
    ("excluded_by_review", "excluded_by_review"),
];

/// One parsed line of an exclusion list (validated before it reaches the store).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ExclusionRow {
    /// 1-based line number in the imported file (header = line 1).
    pub line: i64,
    /// The company listed; empty for an entry by industry code.
    pub uscc: String,
    /// The restricted-industry catalogue lists industries (GB/T 4754-2017 codes) instead of companies.
    pub industry_code: Option<String>,
    pub name: String,
    pub reason: String,
    /// `YYYY-MM-DD`: the accident date for `safety_accident`; else optional.
    pub event_date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ExclusionList {
    pub id: String,
    pub kind: String,
    pub version: i64,
    pub file_name: String,
    pub sha256: String,
    pub entries: i64,
    pub imported_by: Option<String>,
    pub imported_at: i64,
}

fn list_from(r: &AnyRow) -> Result<ExclusionList> {
    Ok(ExclusionList {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        version: r.try_get("version")?,
        file_name: r.try_get("file_name")?,
        sha256: r.try_get("sha256")?,
        entries: r.try_get("entries")?,
        imported_by: r.try_get("imported_by")?,
        imported_at: r.try_get("imported_at")?,
    })
}

/// The lists in force at a moment: per kind, the latest version imported by then, with its entries.
#[derive(Debug, Clone, Default)]
pub struct ListsInForce {
    pub lists: BTreeMap<String, ExclusionList>,
    /// kind → USCC → event dates (empty string when the entry has none).
    pub entries: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// kind → the industry codes it lists (the restricted-industry catalogue, F3).
    pub industry_codes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OverlapGrant {
    pub id: String,
    pub beneficiary: String,
    pub overlap_group: String,
    pub year: i64,
    pub policy: String,
    /// `national`, `municipal`, `district` or `other`.
    pub level: String,
    /// The item the other policy paid for (invoice or contract number), unique per overlap group.
    pub item_key: Option<String>,
    pub amount_fen: i64,
    pub recorded_by: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Batch {
    pub id: String,
    pub year: i64,
    /// Comma-separated clause IDs settled in this batch.
    pub clauses: String,
    pub as_of: String,
    pub policy_version: String,
    /// JSON: the exclusion list versions used, by kind.
    pub lists: String,
    /// `draft` → `approved` (second signature) → `paid` (finance paid every approved line).
    pub status: String,
    /// What the draft offers: the sum of its positive lines (differences to what was approved).
    pub total_fen: i64,
    pub line_count: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
    /// What finance paid (credited, offsets included); `None` until finance pays.
    pub paid_fen: Option<i64>,
    /// 意愿确认 closes at this instant (ms); lines not confirmed by then lapse at approval.
    pub confirm_until_ms: Option<i64>,
    /// What the draft was based on (policy version, lists, corrections, findings): approval
    /// refuses a draft whose basis changed since.
    pub basis_mark: Option<String>,
    /// What approval granted: the positive differences it approved.
    pub approved_fen: Option<i64>,
    /// What approval turned into recovery orders (lowered keys already paid).
    pub recovery_fen: Option<i64>,
    /// When finance paid the last approved line.
    pub paid_at: Option<i64>,
}

pub(crate) fn batch_from(r: &AnyRow) -> Result<Batch> {
    Ok(Batch {
        id: r.try_get("id")?,
        year: r.try_get("year")?,
        clauses: r.try_get("clauses")?,
        as_of: r.try_get("as_of")?,
        policy_version: r.try_get("policy_version")?,
        lists: r.try_get("lists")?,
        status: r.try_get("status")?,
        total_fen: r.try_get("total_fen")?,
        line_count: r.try_get("line_count")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        approved_by: r.try_get("approved_by")?,
        approved_at: r.try_get("approved_at")?,
        paid_fen: r.try_get("paid_fen")?,
        confirm_until_ms: r.try_get("confirm_until_ms")?,
        basis_mark: r.try_get("basis_mark")?,
        approved_fen: r.try_get("approved_fen")?,
        recovery_fen: r.try_get("recovery_fen")?,
        paid_at: r.try_get("paid_at")?,
    })
}

pub(crate) const BATCH_COLS: &str = "id, year, clauses, as_of, policy_version, lists, status, total_fen, line_count, created_by, created_at, approved_by, approved_at, paid_fen, \
                                     confirm_until_ms, basis_mark, approved_fen, recovery_fen, paid_at";

/// One beneficiary's line in a batch, as computed (the engine's decision is kept whole).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Line {
    pub batch_id: String,
    pub clause: String,
    pub beneficiary: String,
    pub beneficiary_role: String,
    pub beneficiary_name: String,
    pub uscc: Option<String>,
    /// Who confirms for the beneficiary (the founder, the operator, the company's owner).
    pub owner_user_id: Option<String>,
    /// `yes`, `no`, `unknown` (facts missing).
    pub eligible: String,
    /// The difference this line pays: the year-to-date entitlement less what was approved for
    /// the key before the draft (补发 when positive; negative when the entitlement was lowered).
    /// Computed lines (before storing) carry the entitlement here.
    pub amount_fen: i64,
    /// The clause's cap for the scope (what approval consumes against).
    pub cap_fen: i64,
    /// The engine's decision as JSON: reasons, missing facts, trace.
    pub decision: String,
    /// `pending` → `confirmed` / `declined` (意愿确认), or `lapsed` when the window closed first.
    pub confirmation: String,
    pub confirmed_at: Option<i64>,
    /// What finance paid for the line (credited, offsets included); `None` until paid.
    pub paid_fen: Option<i64>,
    /// The year-to-date entitlement the engine computed (after caps and budgets).
    pub entitlement_fen: i64,
    /// What was approved for the key (clause, beneficiary, year) before this draft.
    pub prior_fen: i64,
    /// What approval granted (the difference actually approved); `None` before approval.
    pub approved_fen: Option<i64>,
    /// The part of the payment offset against open recovery orders (抵扣).
    pub offset_fen: Option<i64>,
    /// Finance's bank reference for the transfer.
    pub payment_reference: Option<String>,
    pub paid_by: Option<String>,
    pub paid_at: Option<i64>,
    /// Why the line was not approved (`not_confirmed_in_time`).
    pub lapse_reason: Option<String>,
}

pub(crate) fn line_from(r: &AnyRow) -> Result<Line> {
    Ok(Line {
        batch_id: r.try_get("batch_id")?,
        clause: r.try_get("clause")?,
        beneficiary: r.try_get("beneficiary")?,
        beneficiary_role: r.try_get("beneficiary_role")?,
        beneficiary_name: r.try_get("beneficiary_name")?,
        uscc: r.try_get("uscc")?,
        owner_user_id: r.try_get("owner_user_id")?,
        eligible: r.try_get("eligible")?,
        amount_fen: r.try_get("amount_fen")?,
        cap_fen: r.try_get("cap_fen")?,
        decision: r.try_get("decision")?,
        confirmation: r.try_get("confirmation")?,
        confirmed_at: r.try_get("confirmed_at")?,
        paid_fen: r.try_get("paid_fen")?,
        entitlement_fen: r.try_get("entitlement_fen")?,
        prior_fen: r.try_get("prior_fen")?,
        approved_fen: r.try_get("approved_fen")?,
        offset_fen: r.try_get("offset_fen")?,
        payment_reference: r.try_get("payment_reference")?,
        paid_by: r.try_get("paid_by")?,
        paid_at: r.try_get("paid_at")?,
        lapse_reason: r.try_get("lapse_reason")?,
    })
}

/// The columns a draft writes.
const LINE_INSERT_COLS: &str =
    "batch_id, clause, beneficiary, beneficiary_role, beneficiary_name, uscc, owner_user_id, eligible, amount_fen, cap_fen, \
                                decision, confirmation, confirmed_at, paid_fen, entitlement_fen, prior_fen";

pub(crate) const LINE_COLS: &str =
    "batch_id, clause, beneficiary, beneficiary_role, beneficiary_name, uscc, owner_user_id, eligible, amount_fen, cap_fen, \
                         decision, confirmation, confirmed_at, paid_fen, entitlement_fen, prior_fen, approved_fen, offset_fen, payment_reference, \
                         paid_by, paid_at, lapse_reason";

/// What a new batch is made of.
pub struct NewBatch {
    pub year: i64,
    pub clauses: Vec<String>,
    pub as_of: String,
    pub policy_version: String,
    pub lists: String,
    /// Lines as computed: `amount_fen` holds the year-to-date entitlement; the store turns it
    /// into the difference against what was approved for the key.
    pub lines: Vec<Line>,
    pub confirm_until_ms: i64,
    pub basis_mark: String,
}

/// Which lines to list.
#[derive(Debug, Default, Clone)]
pub struct LineFilter {
    pub clause: Option<String>,
    /// Only lines with an amount above zero.
    pub payable: bool,
    pub limit: Option<i64>,
}

impl Store {
    // ------------------------------------------------------------ F3 exclusion lists

    /// Imports one version of an exclusion list: all rows or nothing. The version is the next
    /// one of its kind; earlier versions stay for replays (a decision names the version it used).
    pub async fn import_exclusions(
        &self,
        actor: &Actor,
        kind: &str,
        file_name: &str,
        sha256: &str,
        rows: &[ExclusionRow],
    ) -> Result<ExclusionList> {
        if !EXCLUSION_KINDS.iter().any(|(k, _)| *k == kind) {
            return Err(StoreError::Invalid {
                field: "kind",
                code: "unknown_list_kind",
            });
        }
        let mut tx = self.begin().await?;
        let version: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM exclusion_lists WHERE kind = $1")
            .bind(kind)
            .fetch_one(&mut *tx)
            .await?;
        let list = ExclusionList {
            id: new_id(),
            kind: kind.to_string(),
            version: version + 1,
            file_name: file_name.to_string(),
            sha256: sha256.to_string(),
            entries: rows.len() as i64,
            imported_by: actor.user_id.clone(),
            imported_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO exclusion_lists (id, kind, version, file_name, sha256, entries, imported_by, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&list.id)
        .bind(&list.kind)
        .bind(list.version)
        .bind(&list.file_name)
        .bind(&list.sha256)
        .bind(list.entries)
        .bind(list.imported_by.clone())
        .bind(list.imported_at)
        .execute(&mut *tx)
        .await?;
        for chunk in pow2_chunks(rows, 128) {
            let sql = multi_insert(
                self.backend,
                "exclusion_entries",
                "list_id, line, uscc, name, reason, event_date, industry_code",
                7,
                chunk.len(),
                "",
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(&list.id)
                    .bind(r.line)
                    .bind(&r.uscc)
                    .bind(&r.name)
                    .bind(&r.reason)
                    .bind(r.event_date.clone())
                    .bind(r.industry_code.clone());
            }
            q.execute(&mut *tx).await?;
        }
        let after = serde_json::json!({ "kind": kind, "version": list.version, "sha256": sha256, "entries": list.entries });
        record_after(
            &mut tx,
            actor,
            "exclusions.import",
            "exclusion_list",
            &list.id,
            after,
            format!("{kind} v{} ({} entries, {file_name})", list.version, list.entries),
        )
        .await?;
        tx.commit().await?;
        Ok(list)
    }

    pub async fn exclusion_lists(&self) -> Result<Vec<ExclusionList>> {
        let rows = sqlx::query(
            "SELECT id, kind, version, file_name, sha256, entries, imported_by, imported_at FROM exclusion_lists ORDER BY kind, version DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(list_from).collect()
    }

    /// Per kind, the latest version imported at or before `at_ms`, with its entries.
    pub async fn exclusions_in_force(&self, at_ms: i64) -> Result<ListsInForce> {
        let mut out = ListsInForce::default();
        for l in self.exclusion_lists().await? {
            if l.imported_at <= at_ms && !out.lists.contains_key(&l.kind) {
                out.lists.insert(l.kind.clone(), l);
            }
        }
        self.fill_list_entries(&mut out, at_ms).await?;
        Ok(out)
    }

    /// Loads the entries of the chosen list versions, then adds the platform's own no-support
    /// list (F2, S5: recoveries) in force at `at_ms` as excluded by review — by USCC or, for a
    /// beneficiary without one, by party id.
    async fn fill_list_entries(&self, out: &mut ListsInForce, at_ms: i64) -> Result<()> {
        for (kind, l) in &out.lists {
            let rows = sqlx::query("SELECT uscc, event_date, industry_code FROM exclusion_entries WHERE list_id = $1")
                .bind(&l.id)
                .fetch_all(&self.pool)
                .await?;
            let m = out.entries.entry(kind.clone()).or_default();
            for r in rows {
                if let Some(code) = r.try_get::<Option<String>, _>("industry_code")? {
                    out.industry_codes.entry(kind.clone()).or_default().push(code);
                    continue;
                }
                let uscc: String = r.try_get("uscc")?;
                let date: Option<String> = r.try_get("event_date")?;
                m.entry(uscc).or_default().push(date.unwrap_or_default());
            }
        }
        for key in self.no_support_in_force(at_ms).await? {
            out.entries
                .entry("excluded_by_review".into())
                .or_default()
                .entry(key)
                .or_default()
                .push(String::new());
        }
        Ok(())
    }

    /// The list versions a batch recorded (`ids`), with their entries — to replay a decision with
    /// the lists in force that day — plus the platform's own no-support list as it was at `at_ms`.
    pub async fn exclusions_by_ids(&self, ids: &[String], at_ms: i64) -> Result<ListsInForce> {
        let mut out = ListsInForce::default();
        for l in self.exclusion_lists().await? {
            if ids.contains(&l.id) {
                out.lists.insert(l.kind.clone(), l);
            }
        }
        self.fill_list_entries(&mut out, at_ms).await?;
        Ok(out)
    }

    // ------------------------------------------------------------ S3 other grants

    pub async fn record_overlap_grant(&self, actor: &Actor, g: &OverlapGrant) -> Result<OverlapGrant> {
        if g.amount_fen < 0 {
            return Err(StoreError::Invalid {
                field: "amount_fen",
                code: "out_of_range",
            });
        }
        let mut g = g.clone();
        g.id = new_id();
        g.created_at = now_ms();
        g.recorded_by = actor.user_id.clone();
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "INSERT INTO overlap_grants (id, beneficiary, overlap_group, year, policy, amount_fen, recorded_by, created_at, level, item_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&g.id)
        .bind(&g.beneficiary)
        .bind(&g.overlap_group)
        .bind(g.year)
        .bind(&g.policy)
        .bind(g.amount_fen)
        .bind(g.recorded_by.clone())
        .bind(g.created_at)
        .bind(&g.level)
        .bind(g.item_key.clone())
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "item") || is_unique_violation(&e, "overlap_grants") {
                return Err(StoreError::Conflict("overlap_item_recorded"));
            }
            return Err(e.into());
        }
        let after = serde_json::to_value(&g).unwrap_or_default();
        record_after(
            &mut tx,
            actor,
            "overlap.record",
            "overlap_grant",
            &g.id,
            after,
            format!("{} {} {} fen ({})", g.beneficiary, g.overlap_group, g.amount_fen, g.policy),
        )
        .await?;
        tx.commit().await?;
        Ok(g)
    }

    pub async fn overlap_grants(&self, year: i64) -> Result<Vec<OverlapGrant>> {
        let rows = sqlx::query(
            "SELECT id, beneficiary, overlap_group, year, policy, level, item_key, amount_fen, recorded_by, created_at FROM overlap_grants WHERE year = $1 ORDER BY created_at",
        )
        .bind(year)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OverlapGrant {
                    id: r.try_get("id")?,
                    beneficiary: r.try_get("beneficiary")?,
                    overlap_group: r.try_get("overlap_group")?,
                    year: r.try_get("year")?,
                    policy: r.try_get("policy")?,
                    level: r.try_get("level")?,
                    item_key: r.try_get("item_key")?,
                    amount_fen: r.try_get("amount_fen")?,
                    recorded_by: r.try_get("recorded_by")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    // ------------------------------------------------------------ batches

    /// Stores a draft batch with all its lines in one transaction. Each computed line carries its
    /// year-to-date entitlement; the store reads what was approved for its key (clause,
    /// beneficiary, year) in the same transaction and keeps the difference as the line's amount,
    /// so a second batch of a year offers only what the first did not approve (issue 17).
    pub async fn create_settlement(&self, actor: &Actor, b: NewBatch) -> Result<Batch> {
        let mut tx = self.begin().await?;
        let approved = crate::grants::approved_in_year(&mut tx, b.year).await?;
        let lines: Vec<Line> = b
            .lines
            .into_iter()
            .map(|l| {
                let prior = approved.get(&(l.clause.clone(), l.beneficiary.clone())).copied().unwrap_or(0);
                let entitlement = l.amount_fen.max(0);
                let answer = opchub_domain::grant::Answer::from_code(&l.eligible);
                Line {
                    amount_fen: opchub_domain::grant::draft_delta(entitlement, answer, prior),
                    entitlement_fen: entitlement,
                    prior_fen: prior,
                    ..l
                }
            })
            .collect();
        let batch = Batch {
            id: new_id(),
            year: b.year,
            clauses: b.clauses.join(","),
            as_of: b.as_of,
            policy_version: b.policy_version,
            lists: b.lists,
            status: "draft".into(),
            total_fen: lines.iter().map(|l| l.amount_fen.max(0)).sum(),
            line_count: lines.len() as i64,
            created_by: actor.user_id.clone(),
            created_at: now_ms(),
            approved_by: None,
            approved_at: None,
            paid_fen: None,
            confirm_until_ms: Some(b.confirm_until_ms),
            basis_mark: Some(b.basis_mark),
            approved_fen: None,
            recovery_fen: None,
            paid_at: None,
        };
        sqlx::query(&format!(
            "INSERT INTO settlement_batches ({BATCH_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(&batch.id)
        .bind(batch.year)
        .bind(&batch.clauses)
        .bind(&batch.as_of)
        .bind(&batch.policy_version)
        .bind(&batch.lists)
        .bind(&batch.status)
        .bind(batch.total_fen)
        .bind(batch.line_count)
        .bind(batch.created_by.clone())
        .bind(batch.created_at)
        .bind(None::<String>)
        .bind(None::<i64>)
        .bind(None::<i64>)
        .bind(batch.confirm_until_ms)
        .bind(batch.basis_mark.clone())
        .bind(None::<i64>)
        .bind(None::<i64>)
        .bind(None::<i64>)
        .execute(&mut *tx)
        .await?;
        for chunk in pow2_chunks(&lines, 64) {
            let sql = multi_insert(self.backend, "settlement_lines", LINE_INSERT_COLS, 16, chunk.len(), "");
            let mut q = sqlx::query(&sql);
            for l in chunk {
                q = q
                    .bind(&batch.id)
                    .bind(&l.clause)
                    .bind(&l.beneficiary)
                    .bind(&l.beneficiary_role)
                    .bind(&l.beneficiary_name)
                    .bind(l.uscc.clone())
                    .bind(l.owner_user_id.clone())
                    .bind(&l.eligible)
                    .bind(l.amount_fen)
                    .bind(l.cap_fen)
                    .bind(&l.decision)
                    .bind("pending")
                    .bind(None::<i64>)
                    .bind(None::<i64>)
                    .bind(l.entitlement_fen)
                    .bind(l.prior_fen);
            }
            q.execute(&mut *tx).await?;
        }
        let after =
            serde_json::json!({ "year": batch.year, "clauses": batch.clauses, "total_fen": batch.total_fen, "lines": batch.line_count });
        record_after(
            &mut tx,
            actor,
            "settlement.create",
            "settlement",
            &batch.id,
            after,
            format!("{} {} lines, {} fen", batch.year, batch.line_count, batch.total_fen),
        )
        .await?;
        tx.commit().await?;
        Ok(batch)
    }

    pub async fn settlement_batches(&self) -> Result<Vec<Batch>> {
        let rows = sqlx::query(&format!("SELECT {BATCH_COLS} FROM settlement_batches ORDER BY created_at DESC"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(batch_from).collect()
    }

    pub async fn settlement_batch(&self, id: &str) -> Result<Batch> {
        let row = sqlx::query(&format!("SELECT {BATCH_COLS} FROM settlement_batches WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        batch_from(&row)
    }

    pub async fn settlement_lines(&self, batch_id: &str, f: &LineFilter) -> Result<Vec<Line>> {
        let mut sql = format!("SELECT {LINE_COLS} FROM settlement_lines WHERE batch_id = $1");
        if f.clause.is_some() {
            sql.push_str(" AND clause = $2");
        }
        if f.payable {
            sql.push_str(" AND amount_fen > 0");
        }
        sql.push_str(" ORDER BY clause, amount_fen DESC, beneficiary_name");
        if let Some(n) = f.limit {
            sql.push_str(&format!(" LIMIT {}", n.max(0)));
        }
        let mut q = sqlx::query(&sql).bind(batch_id);
        if let Some(c) = &f.clause {
            q = q.bind(c);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(line_from).collect()
    }

    /// Lines a user confirms for (their OPC's, their community's, their company's), newest batch first.
    pub async fn settlement_lines_of_owner(&self, user_id: &str) -> Result<Vec<(Batch, Line)>> {
        let rows = sqlx::query(&format!(
            "SELECT {LINE_COLS} FROM settlement_lines WHERE owner_user_id = $1 AND (amount_fen <> 0 OR eligible = 'unknown' OR paid_fen IS NOT NULL)"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = vec![];
        let mut batches: BTreeMap<String, Batch> = BTreeMap::new();
        for r in &rows {
            let l = line_from(r)?;
            let b = match batches.get(&l.batch_id) {
                Some(b) => b.clone(),
                None => {
                    let b = self.settlement_batch(&l.batch_id).await?;
                    batches.insert(b.id.clone(), b.clone());
                    b
                }
            };
            out.push((b, l));
        }
        out.sort_by(|a, b| b.0.created_at.cmp(&a.0.created_at).then(a.1.clause.cmp(&b.1.clause)));
        Ok(out)
    }

    /// 意愿确认: the beneficiary's owner accepts or declines its line of a draft batch, once.
    /// Someone else's line is `NotFound`.
    pub async fn confirm_settlement_line(
        &self,
        actor: &Actor,
        batch_id: &str,
        clause: &str,
        beneficiary: &str,
        accept: bool,
    ) -> Result<Line> {
        let Some(user_id) = actor.user_id.clone() else {
            return Err(StoreError::NotFound);
        };
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {LINE_COLS} FROM settlement_lines WHERE batch_id = $1 AND clause = $2 AND beneficiary = $3 AND owner_user_id = $4"
        ))
        .bind(batch_id)
        .bind(clause)
        .bind(beneficiary)
        .bind(&user_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let line = line_from(&row)?;
        let b = sqlx::query("SELECT status, confirm_until_ms FROM settlement_batches WHERE id = $1")
            .bind(batch_id)
            .fetch_one(&mut *tx)
            .await?;
        let (status, until): (String, Option<i64>) = (b.try_get("status")?, b.try_get("confirm_until_ms")?);
        if status != "draft" {
            return Err(StoreError::Conflict("batch_not_draft"));
        }
        if line.amount_fen <= 0 {
            return Err(StoreError::Conflict("nothing_to_confirm"));
        }
        let now = now_ms();
        if until.is_some_and(|u| now > u) {
            return Err(StoreError::Conflict("confirmation_closed"));
        }
        let to = if accept { "confirmed" } else { "declined" };
        let n = sqlx::query(
            "UPDATE settlement_lines SET confirmation = $1, confirmed_at = $2 WHERE batch_id = $3 AND clause = $4 AND beneficiary = $5 AND confirmation = 'pending'",
        )
        .bind(to)
        .bind(now)
        .bind(batch_id)
        .bind(clause)
        .bind(beneficiary)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Err(StoreError::Conflict("already_confirmed"));
        }
        let after = serde_json::json!({ "batch": batch_id, "clause": clause, "beneficiary": beneficiary, "confirmation": to });
        record_after(
            &mut tx,
            actor,
            "settlement.confirm",
            "settlement_line",
            &format!("{batch_id}/{clause}/{beneficiary}"),
            after,
            format!("{clause} {beneficiary}: {to}"),
        )
        .await?;
        tx.commit().await?;
        Ok(Line {
            confirmation: to.into(),
            confirmed_at: Some(now),
            ..line
        })
    }
}

// ------------------------------------------------------------ inputs of a settlement

/// One day's rollup of one (subject, counterparty, kind), with its not-qualified part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    pub day: String,
    pub subject: String,
    pub counterparty: String,
    pub kind: String,
    pub quantity: i64,
    pub list_fen: i64,
    pub charged_fen: i64,
    pub events: i64,
    pub uq_quantity: i64,
    pub uq_list_fen: i64,
    pub uq_charged_fen: i64,
    pub uq_events: i64,
    /// Qualified events with nothing charged (free calls, M2.3).
    pub free_events: i64,
    /// What per-event rounding left of the list and charged amounts (and of their
    /// not-qualified part), in millionths of a fen (issue 17 item 6).
    pub list_sub_micro: i64,
    pub charged_sub_micro: i64,
    pub uq_list_sub_micro: i64,
    pub uq_charged_sub_micro: i64,
}

impl RollupRow {
    /// The exact list − charged of the row and of its not-qualified part, in millionths of a
    /// fen: the discount an operator gave (M2.2), rounded only at the end of the clause.
    pub fn discount_micro(&self) -> (i128, i128) {
        let exact = |fen: i64, sub: i64| fen as i128 * opchub_domain::money::MICRO_PER_FEN as i128 + sub as i128;
        (
            exact(self.list_fen, self.list_sub_micro) - exact(self.charged_fen, self.charged_sub_micro),
            exact(self.uq_list_fen, self.uq_list_sub_micro) - exact(self.uq_charged_fen, self.uq_charged_sub_micro),
        )
    }
}

/// A company or OPC as settlement sees it (G2 facts; `None` = not known to the platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub id: String,
    pub name: String,
    pub uscc: Option<String>,
    pub zone: String,
    pub market_registered: bool,
    pub tax_registered: Option<bool>,
    /// M2.4: a company in the district (enterprises; `None` for others).
    pub in_district: Option<bool>,
    /// Main industry (GB/T 4754-2017), matched against F3's restricted-industry catalogue.
    pub industry_code: Option<String>,
    pub owner_user_id: String,
    pub created_at: i64,
}

/// Everyone a settlement may pay: OPCs, community operators (by operator account, with their
/// communities), district enterprises; and who occupies which community's free workstations.
#[derive(Debug, Clone, Default)]
pub struct Parties {
    pub opcs: Vec<Party>,
    /// Operator account → the communities it runs (company, USCC, zone of the first one).
    pub operators: Vec<Party>,
    /// Community id → operator account.
    pub community_operator: BTreeMap<String, String>,
    pub enterprises: Vec<Party>,
    /// Operator account → (OPC id, occupied since ms) for every occupied workstation.
    pub occupancy: BTreeMap<String, Vec<(String, i64)>>,
}

impl Store {
    /// Rollups of `kinds` in the months `from..to` (`YYYY-MM`, `to` excluded), one row per
    /// (month, subject, counterparty, kind, unit) from the monthly rollups. Each row's `day` is
    /// the first day in that month with usage (so a row is dated inside its month; callers
    /// re-read a month by day with `rollups_of_month` when a boundary — a registration day, the
    /// validity window — falls inside it). `only`: just the rows where one of these parties is
    /// the subject or the counterparty (one beneficiary's estimate), read through the indexes.
    pub async fn rollups_by_month(&self, from: &str, to: &str, kinds: &[&str], only: Option<&[String]>) -> Result<Vec<RollupRow>> {
        let mut out = vec![];
        for kind in kinds {
            let cols = "first_day AS day, subject, counterparty, quantity, list_fen, charged_fen, events, uq_quantity, uq_list_fen, \
                        uq_charged_fen, uq_events, free_events, list_sub_micro, charged_sub_micro, uq_list_sub_micro, uq_charged_sub_micro";
            let rows = match only {
                None => {
                    sqlx::query(&format!(
                        "SELECT {cols} FROM ledger_rollups_monthly WHERE kind = $1 AND month >= $2 AND month < $3"
                    ))
                    .bind(*kind)
                    .bind(from)
                    .bind(to)
                    .fetch_all(&self.pool)
                    .await?
                }
                Some(parties) => {
                    let mut rows = vec![];
                    for p in parties {
                        // Two index range reads; a row where the party is both sides is read once.
                        rows.extend(
                            sqlx::query(&format!(
                                "SELECT {cols} FROM ledger_rollups_monthly WHERE subject = $1 AND kind = $2 AND month >= $3 AND month < $4"
                            ))
                            .bind(p)
                            .bind(*kind)
                            .bind(from)
                            .bind(to)
                            .fetch_all(&self.pool)
                            .await?,
                        );
                        rows.extend(
                            sqlx::query(&format!(
                                "SELECT {cols} FROM ledger_rollups_monthly WHERE counterparty = $1 AND subject <> $2 AND kind = $3 \
                                 AND month >= $4 AND month < $5"
                            ))
                            .bind(p)
                            .bind(p)
                            .bind(*kind)
                            .bind(from)
                            .bind(to)
                            .fetch_all(&self.pool)
                            .await?,
                        );
                    }
                    rows
                }
            };
            for r in &rows {
                out.push(RollupRow {
                    day: r.try_get("day")?,
                    subject: r.try_get("subject")?,
                    counterparty: r.try_get("counterparty")?,
                    kind: (*kind).to_string(),
                    quantity: r.try_get("quantity")?,
                    list_fen: r.try_get("list_fen")?,
                    charged_fen: r.try_get("charged_fen")?,
                    events: r.try_get("events")?,
                    uq_quantity: r.try_get("uq_quantity")?,
                    uq_list_fen: r.try_get("uq_list_fen")?,
                    uq_charged_fen: r.try_get("uq_charged_fen")?,
                    uq_events: r.try_get("uq_events")?,
                    free_events: r.try_get("free_events")?,
                    list_sub_micro: r.try_get("list_sub_micro")?,
                    charged_sub_micro: r.try_get("charged_sub_micro")?,
                    uq_list_sub_micro: r.try_get("uq_list_sub_micro")?,
                    uq_charged_sub_micro: r.try_get("uq_charged_sub_micro")?,
                });
            }
        }
        Ok(out)
    }

    /// One (subject, counterparty, kind)'s rollups in one month (`YYYY-MM`), day by day.
    pub async fn rollups_of_month(&self, month: &str, subject: &str, counterparty: &str, kind: &str) -> Result<Vec<RollupRow>> {
        let rows = sqlx::query(
            "SELECT day, quantity, list_fen, charged_fen, events, uq_quantity, uq_list_fen, uq_charged_fen, uq_events, free_events, \
             list_sub_micro, charged_sub_micro, uq_list_sub_micro, uq_charged_sub_micro FROM ledger_rollups \
             WHERE kind = $1 AND subject = $2 AND counterparty = $3 AND day >= $4 AND day <= $5",
        )
        .bind(kind)
        .bind(subject)
        .bind(counterparty)
        .bind(format!("{month}-01"))
        .bind(format!("{month}-31"))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RollupRow {
                    day: r.try_get("day")?,
                    subject: subject.to_string(),
                    counterparty: counterparty.to_string(),
                    kind: kind.to_string(),
                    quantity: r.try_get("quantity")?,
                    list_fen: r.try_get("list_fen")?,
                    charged_fen: r.try_get("charged_fen")?,
                    events: r.try_get("events")?,
                    uq_quantity: r.try_get("uq_quantity")?,
                    uq_list_fen: r.try_get("uq_list_fen")?,
                    uq_charged_fen: r.try_get("uq_charged_fen")?,
                    uq_events: r.try_get("uq_events")?,
                    free_events: r.try_get("free_events")?,
                    list_sub_micro: r.try_get("list_sub_micro")?,
                    charged_sub_micro: r.try_get("charged_sub_micro")?,
                    uq_list_sub_micro: r.try_get("uq_list_sub_micro")?,
                    uq_charged_sub_micro: r.try_get("uq_charged_sub_micro")?,
                })
            })
            .collect()
    }

    pub async fn settlement_parties(&self) -> Result<Parties> {
        let mut p = Parties::default();
        for r in sqlx::query(&format!("{OPC_PARTY} ORDER BY id")).fetch_all(&self.pool).await? {
            p.opcs.push(opc_party(&r)?);
        }
        let mut operators: BTreeMap<String, Party> = BTreeMap::new();
        for r in sqlx::query(&format!("{OPERATOR_PARTY} ORDER BY c.created_at, c.id"))
            .fetch_all(&self.pool)
            .await?
        {
            let party = operator_party(&r)?;
            p.community_operator.insert(r.try_get("id")?, party.id.clone());
            operators.entry(party.id.clone()).or_insert(party);
        }
        p.operators = operators.into_values().collect();
        for r in sqlx::query(&format!("{ENTERPRISE_PARTY} ORDER BY id"))
            .fetch_all(&self.pool)
            .await?
        {
            p.enterprises.push(enterprise_party(&r)?);
        }
        for r in sqlx::query("SELECT w.community_id, o.id AS opc_id, o.created_at FROM workstations w JOIN opcs o ON o.id = w.opc_id")
            .fetch_all(&self.pool)
            .await?
        {
            let community: String = r.try_get("community_id")?;
            if let Some(op) = p.community_operator.get(&community) {
                p.occupancy
                    .entry(op.clone())
                    .or_default()
                    .push((r.try_get("opc_id")?, r.try_get("created_at")?));
            }
        }
        Ok(p)
    }

    /// One party as settlement sees it, by id: an OPC, a community operator's account (its first
    /// community), or a district enterprise — without loading every party.
    pub async fn settlement_party(&self, id: &str) -> Result<Option<Party>> {
        if let Some(r) = sqlx::query(&format!("{OPC_PARTY} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        {
            return Ok(Some(opc_party(&r)?));
        }
        if let Some(op) = self.settlement_party_operator(id).await? {
            return Ok(Some(op));
        }
        match sqlx::query(&format!("{ENTERPRISE_PARTY} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        {
            Some(r) => Ok(Some(enterprise_party(&r)?)),
            None => Ok(None),
        }
    }

    /// The party a user acts for: the OPC it founded, its own operator account, or the
    /// enterprise it owns (by its role).
    pub async fn settlement_party_of_user(&self, role: &str, user_id: &str) -> Result<Option<Party>> {
        let (sql, read): (String, fn(&AnyRow) -> Result<Party>) = match role {
            "opc_founder" => (format!("{OPC_PARTY} WHERE founder_user_id = $1 ORDER BY id LIMIT 1"), opc_party),
            "enterprise" => (
                format!("{ENTERPRISE_PARTY} WHERE owner_user_id = $1 ORDER BY id LIMIT 1"),
                enterprise_party,
            ),
            "community_operator" => return self.settlement_party_operator(user_id).await,
            _ => return Ok(None),
        };
        let r = sqlx::query(&sql).bind(user_id).fetch_optional(&self.pool).await?;
        r.as_ref().map(read).transpose()
    }

    async fn settlement_party_operator(&self, user_id: &str) -> Result<Option<Party>> {
        let r = sqlx::query(&format!(
            "{OPERATOR_PARTY} WHERE c.operator_user_id = $1 ORDER BY c.created_at, c.id LIMIT 1"
        ))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(operator_party).transpose()
    }

    /// What each beneficiary has already consumed of each per-year cap in `year`.
    pub async fn caps_consumed_in(&self, year: i64) -> Result<BTreeMap<(String, String), i64>> {
        let rows = sqlx::query("SELECT clause, beneficiary, consumed_fen FROM cap_ledger WHERE scope = 'year' AND period_key = $1")
            .bind(year.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            out.insert((r.try_get("clause")?, r.try_get("beneficiary")?), r.try_get("consumed_fen")?);
        }
        Ok(out)
    }

    /// Records a party's main industry (GB/T 4754-2017, validated by the caller), or clears it:
    /// F3's restricted-industry catalogue is matched by it. `kind` is `opc`, `community` or
    /// `enterprise`.
    pub async fn set_industry_code(&self, actor: &Actor, kind: &str, id: &str, code: Option<&str>) -> Result<()> {
        let table = match kind {
            "opc" => "opcs",
            "community" => "communities",
            "enterprise" => "enterprises",
            _ => {
                return Err(StoreError::Invalid {
                    field: "kind",
                    code: "unknown_kind",
                })
            }
        };
        let mut tx = self.begin().await?;
        let before: Option<Option<String>> = sqlx::query_scalar(&format!("SELECT industry_code FROM {table} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(before) = before else {
            return Err(StoreError::NotFound);
        };
        sqlx::query(&format!("UPDATE {table} SET industry_code = $1 WHERE id = $2"))
            .bind(code.map(str::to_string))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let (b, a) = (
            serde_json::json!({ "industry_code": before }),
            serde_json::json!({ "industry_code": code }),
        );
        record_before_after(
            &mut tx,
            actor,
            "company.industry_code",
            kind,
            id,
            b,
            a,
            format!("industry_code = {}", code.unwrap_or("—")),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Writes rollup rows as they are, in one transaction: for `opchub bench-settle`, which
    /// seeds a scratch database with the rollups of millions of simulated events. Never used by
    /// the platform itself (rollups are only written with their events).
    #[doc(hidden)]
    pub async fn bench_insert_rollups(&self, rows: &[RollupRow]) -> Result<()> {
        use crate::ledger::{write_rollups, RollupDelta};
        let mut daily = BTreeMap::new();
        for r in rows {
            let unit = opchub_ledger::event::unit_of(&r.kind).unwrap_or("unit").to_string();
            let d: &mut RollupDelta = daily
                .entry((r.day.clone(), r.subject.clone(), r.counterparty.clone(), r.kind.clone(), unit))
                .or_default();
            d.quantity += r.quantity;
            d.list += r.list_fen;
            d.charged += r.charged_fen;
            d.events += r.events;
            d.uq_quantity += r.uq_quantity;
            d.uq_list += r.uq_list_fen;
            d.uq_charged += r.uq_charged_fen;
            d.uq_events += r.uq_events;
            d.free_events += r.free_events;
            d.list_sub += r.list_sub_micro;
            d.charged_sub += r.charged_sub_micro;
            d.uq_list_sub += r.uq_list_sub_micro;
            d.uq_charged_sub += r.uq_charged_sub_micro;
        }
        let mut tx = self.begin().await?;
        write_rollups(&mut tx, self.backend, daily).await?;
        tx.commit().await?;
        Ok(())
    }
}

const OPC_PARTY: &str =
    "SELECT id, name, uscc, registration_status, zone, tax_registered, industry_code, founder_user_id, created_at FROM opcs";
const OPERATOR_PARTY: &str =
    "SELECT c.id, c.company_name, c.company_uscc, c.zone, c.operator_user_id, c.market_registered, c.tax_registered, \
                              c.industry_code, c.created_at FROM communities c";
const ENTERPRISE_PARTY: &str =
    "SELECT id, name, uscc, zone, owner_user_id, market_registered, tax_registered, in_district, industry_code, created_at FROM enterprises";

fn opc_party(r: &AnyRow) -> Result<Party> {
    let status: String = r.try_get("registration_status")?;
    let tax: i64 = r.try_get("tax_registered")?;
    Ok(Party {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        uscc: r.try_get("uscc")?,
        zone: r.try_get("zone")?,
        market_registered: status == "registered",
        tax_registered: Some(tax != 0),
        in_district: None,
        owner_user_id: r.try_get("founder_user_id")?,
        industry_code: r.try_get("industry_code")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A community operator as a party: its account, with the company of the community row.
fn operator_party(r: &AnyRow) -> Result<Party> {
    let op: String = r.try_get("operator_user_id")?;
    let tax: Option<i64> = r.try_get("tax_registered")?;
    let market: i64 = r.try_get("market_registered")?;
    Ok(Party {
        id: op.clone(),
        name: r.try_get("company_name")?,
        uscc: Some(r.try_get("company_uscc")?),
        zone: r.try_get("zone")?,
        market_registered: market != 0,
        tax_registered: tax.map(|t| t != 0),
        in_district: None,
        owner_user_id: op,
        industry_code: r.try_get("industry_code")?,
        created_at: r.try_get("created_at")?,
    })
}

fn enterprise_party(r: &AnyRow) -> Result<Party> {
    let tax: Option<i64> = r.try_get("tax_registered")?;
    let market: i64 = r.try_get("market_registered")?;
    let in_district: i64 = r.try_get("in_district")?;
    Ok(Party {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        uscc: Some(r.try_get("uscc")?),
        zone: r.try_get("zone")?,
        market_registered: market != 0,
        tax_registered: tax.map(|t| t != 0),
        in_district: Some(in_district != 0),
        owner_user_id: r.try_get("owner_user_id")?,
        industry_code: r.try_get("industry_code")?,
        created_at: r.try_get("created_at")?,
    })
}
