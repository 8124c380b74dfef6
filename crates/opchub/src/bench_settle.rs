//! `opchub bench-settle`: how long 免申即享 settlement of one year takes for N beneficiaries
//! over the rollups of M events (issue 6 target: 10,000 beneficiaries, 10 million events,
//! under 10 s on SQLite). Seeds a scratch database (run it on one) with OPCs, communities,
//! companies and the daily rollups those events would have produced, then settles the year
//! three times and prints a table. Only the settlement is timed, not the seeding.

use anyhow::{bail, Context, Result};
use chrono::{Datelike, NaiveDate};
use indicatif::{ProgressBar, ProgressStyle};
use opchub_store::settlement::RollupRow;
use opchub_store::{Actor, Store};
use std::time::Instant;

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub async fn run(store: &Store, beneficiaries: usize, events: u64, runs: usize) -> Result<()> {
    if store.counts().await.map_err(err)?.opcs > 0 {
        bail!("bench-settle needs an empty scratch database (this one has OPCs)");
    }
    let year = (chrono::Utc::now() + chrono::Duration::hours(8)).year();
    let start = NaiveDate::from_ymd_opt(year, 1, 1).context("year")?;
    let policy = opchub_policy::Policy::embedded().map_err(err)?.preview_from(start);
    let theme = store
        .theme_packages()
        .await
        .map_err(err)?
        .first()
        .map(|t| t.code.clone())
        .context("no theme packages")?;
    let bar = ProgressBar::new(beneficiaries as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} seeding {msg} [{bar:30}] {pos}/{len}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    // Parties: 1 operator per 200 OPCs, 1 company per 20 OPCs, all in the district and registered.
    let operators = beneficiaries.div_ceil(200).max(1);
    let companies = (beneficiaries / 20).max(1);
    // Everyone registered on January 1st, before any of the year's usage.
    let t0 = start.and_hms_opt(0, 0, 0).context("start")?.and_utc().timestamp_millis() - 8 * 3_600_000;
    let mut tx = store.begin().await.map_err(err)?;
    let user = |id: &str, role: &str| {
        sqlx::query(
            "INSERT INTO users (id, username, display_name, role, password_hash, disabled, created_at) VALUES ($1, $2, $3, $4, 'x', 0, $5)",
        )
        .bind(id.to_string())
        .bind(id.to_string())
        .bind(id.to_string())
        .bind(role.to_string())
        .bind(t0)
    };
    let uscc = |prefix: &str, n: usize| -> Result<String> {
        let alphabet = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
        let mut tail = String::new();
        let mut v = n;
        for _ in 0..6 {
            tail.insert(0, alphabet[v % 31] as char);
            v /= 31;
        }
        Ok(opchub_domain::Uscc::complete(&format!("{prefix}{tail}")).map_err(err)?.to_string())
    };
    bar.set_message("parties");
    for o in 0..operators {
        let id = format!("bop{o}");
        user(&id, "community_operator").execute(&mut *tx).await?;
        sqlx::query("INSERT INTO communities (id, name, company_name, company_uscc, zone, address, operator_user_id, created_at, tax_registered) VALUES ($1, $2, $3, $4, 'hexi_area', '丰台', $5, $6, 1)")
            .bind(format!("bcm{o}"))
            .bind(format!("社区{o}"))
            .bind(format!("运营公司{o}"))
            .bind(uscc("91110106MA1", o)?)
            .bind(&id)
            .bind(t0)
            .execute(&mut *tx)
            .await?;
    }
    for c in 0..companies {
        let id = format!("bco{c}");
        user(&id, "enterprise").execute(&mut *tx).await?;
        sqlx::query("INSERT INTO enterprises (id, name, uscc, zone, owner_user_id, created_at, tax_registered) VALUES ($1, $2, $3, 'hexi_area', $4, $5, 1)")
            .bind(format!("bent{c}"))
            .bind(format!("区内企业{c}"))
            .bind(uscc("91110106MB1", c)?)
            .bind(&id)
            .bind(t0)
            .execute(&mut *tx)
            .await?;
    }
    for i in 0..beneficiaries {
        let uid = format!("bfu{i}");
        user(&uid, "opc_founder").execute(&mut *tx).await?;
        sqlx::query("INSERT INTO opcs (id, name, uscc, registration_status, founder_name, founder_user_id, zone, theme_package, community_id, tax_registered, created_at) VALUES ($1, $2, $3, 'registered', '创业者', $4, 'hexi_area', $5, $6, 1, $7)")
            .bind(format!("bopc{i}"))
            .bind(format!("一人公司{i}"))
            .bind(uscc("91110106MC1", i)?)
            .bind(&uid)
            .bind(&theme)
            .bind(format!("bcm{}", i % operators))
            .bind(t0)
            .execute(&mut *tx)
            .await?;
        if i % 500 == 0 {
            bar.set_position(i as u64);
        }
    }
    tx.commit().await.map_err(err)?;
    // One version of every F3 list, so every answer is decidable.
    for kind in [
        "restricted_industry",
        "no_support_sanction",
        "safety_accident",
        "excluded_by_review",
    ] {
        let header = if kind == "safety_accident" {
            "uscc,name,reason,event_date\n"
        } else {
            "uscc,name,reason\n"
        };
        let (rows, sha) = opchub_settle::lists::parse(kind, header.as_bytes()).map_err(err)?;
        store
            .import_exclusions(&Actor::system(), kind, "bench.csv", &sha, &rows)
            .await
            .map_err(err)?;
    }

    // Rollups: per OPC and active day, its token use through its community and its paid calls
    // of another OPC's skill; cooperation payments from companies. The rows sum to at least `events`.
    let today = opchub_ledger::event::day_of(opchub_store::now_ms());
    let last = NaiveDate::parse_from_str(&today, "%Y-%m-%d").context("today")?;
    let days: Vec<String> = (0..100)
        .filter_map(|d| last.checked_sub_days(chrono::Days::new(d)))
        .filter(|d| d.year() == year)
        .map(|d| d.to_string())
        .collect();
    let rows_total = beneficiaries * days.len() * 2 + companies * 12;
    // At least `events` in all (rounded up to whole events per row).
    let per_row = events.div_ceil(rows_total.max(1) as u64).max(1) as i64;
    bar.set_length(rows_total as u64);
    bar.set_position(0);
    bar.set_message("rollups");
    let mut batch: Vec<RollupRow> = Vec::with_capacity(20_000);
    let mut written = 0u64;
    let row = |day: &str, s: String, c: String, kind: &str, q: i64, list: i64, charged: i64, uq: bool| RollupRow {
        day: day.to_string(),
        subject: s,
        counterparty: c,
        kind: kind.to_string(),
        quantity: q,
        list_fen: list,
        charged_fen: charged,
        events: per_row,
        uq_quantity: if uq { q } else { 0 },
        uq_list_fen: if uq { list } else { 0 },
        uq_charged_fen: if uq { charged } else { 0 },
        uq_events: if uq { per_row } else { 0 },
        free_events: 0,
        list_sub_micro: 0,
        charged_sub_micro: 0,
        uq_list_sub_micro: 0,
        uq_charged_sub_micro: 0,
    };
    for i in 0..beneficiaries {
        for (d, day) in days.iter().enumerate() {
            let q = per_row * 2_000;
            batch.push(row(
                day,
                format!("bopc{i}"),
                format!("bcm{}", i % operators),
                "token.input",
                q,
                q / 250,
                q / 500,
                false,
            ));
            // Each OPC uses the skills of five others.
            let callee = (i * 7 + d % 5 + 1) % beneficiaries;
            batch.push(row(
                day,
                format!("bopc{i}"),
                format!("bopc{callee}"),
                "skill.call",
                per_row,
                per_row * 300,
                per_row * 300,
                d % 10 == 0,
            ));
        }
        if batch.len() >= 16_000 {
            written += batch.len() as u64;
            store.bench_insert_rollups(&batch).await.map_err(err)?;
            batch.clear();
            bar.set_position(written);
        }
    }
    for c in 0..companies {
        for m in 0..12usize {
            let Some(day) = days.get(m * 7) else { continue };
            let amount = 500_000 + (c as i64 % 17) * 10_000;
            batch.push(row(
                day,
                format!("bent{c}"),
                format!("bopc{}", (c * 13 + m) % beneficiaries),
                "cooperation.payment",
                amount,
                amount,
                amount,
                false,
            ));
        }
    }
    written += batch.len() as u64;
    store.bench_insert_rollups(&batch).await.map_err(err)?;
    bar.finish_and_clear();
    let simulated = written * per_row as u64;

    println!(
        "bench-settle on {:?}: {beneficiaries} OPCs, {operators} operators, {companies} companies; {written} rollup rows summarising {simulated} events; year {year}",
        store.backend()
    );
    println!(
        "  {:<5} {:>10} {:>10} {:>10} {:>10} {:>8} {:>16}",
        "run", "read s", "decide s", "store s", "total s", "lines", "amount"
    );
    let as_of = crate::settle_cli::default_as_of(year);
    for r in 1..=runs {
        let stamps = std::sync::Mutex::new(Vec::<(String, Instant)>::new());
        let progress = |stage: &str, done: u64, _total: u64| {
            if done == 0 {
                if let Ok(mut s) = stamps.lock() {
                    s.push((stage.to_string(), Instant::now()));
                }
            }
        };
        let started = Instant::now();
        let settled = opchub_settle::settle(store, &Actor::system(), &policy, year, &[], as_of, &progress)
            .await
            .map_err(err)?;
        let total = started.elapsed();
        let s = stamps.lock().map(|s| s.clone()).unwrap_or_default();
        let at = |name: &str| s.iter().find(|(n, _)| n == name).map(|(_, t)| *t);
        let secs = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}", b.duration_since(a).as_secs_f64()),
            _ => "-".into(),
        };
        let end = Some(started + total);
        println!(
            "  {:<5} {:>10} {:>10} {:>10} {:>10.2} {:>8} {:>16}",
            r,
            secs(at("read"), at("decide")),
            secs(at("decide"), at("store")),
            secs(at("store"), end),
            total.as_secs_f64(),
            settled.batch.line_count,
            opchub_domain::Money::from_fen(settled.batch.total_fen).to_string()
        );
    }
    Ok(())
}
