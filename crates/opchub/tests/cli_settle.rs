//! `opchub settle`, `opchub exclusions` and `opchub settlement` with the real binary on demo
//! data (issue 6): a draft batch from the demo ledger with a summary table; a what-if that
//! saves nothing; a malformed list names its line and imports nothing; bad input exits 2.
//! Runs on SQLite, or on PostgreSQL when `OPCHUB_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Datelike;
use std::path::Path;

mod common;

use common::opchub;

fn batches(dir: &Path, db: &str) -> usize {
    let (code, out) = opchub(dir, db, &["settlement", "list"]);
    assert_eq!(code, 0, "{out}");
    out.lines().filter(|l| l.contains(" draft ") || l.contains(" approved ")).count()
}

#[tokio::test]
async fn settle_the_demo_year_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = opchub_testkit::db::fresh_database_url(dir.path()).await.unwrap();
    let (code, out) = opchub(dir.path(), &db, &["demo"]);
    assert_eq!(code, 0, "{out}");
    let now = chrono::Utc::now() + chrono::Duration::hours(8);
    let year = now.year().to_string();
    let from = format!("{year}-01-01");

    // Settled as if the measures were in force since January 1st: the demo's skill calls,
    // discounted tokens and cooperation payments become lines with amounts.
    let (code, out) = opchub(dir.path(), &db, &["settle", "--year", &year, "--preview-from", &from]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("draft batch"), "{out}");
    for clause in ["M1.1", "M2.2", "M2.3-publisher", "M2.3-invoker", "M2.4"] {
        let row = out
            .lines()
            .find(|l| l.trim_start().starts_with(clause))
            .unwrap_or_else(|| panic!("no {clause} row in {out}"));
        assert!(!row.contains("¥0.00"), "{clause} settles to nothing: {row}");
    }
    assert_eq!(batches(dir.path(), &db), 1);

    // Replay (F3): decided again with the list versions the batch recorded, every line the same.
    let (_, list) = opchub(dir.path(), &db, &["settlement", "list"]);
    let batch_id = list
        .lines()
        .find(|l| l.contains(" draft "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let (code, out) = opchub(dir.path(), &db, &["settlement", "replay", &batch_id, "--preview-from", &from]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("different")
            && out
                .lines()
                .any(|l| l.trim_start().starts_with("different") && l.trim_end().ends_with(" 0")),
        "{out}"
    );
    let (code, out) = opchub(dir.path(), &db, &["settlement", "replay", "no-such-batch"]);
    assert_eq!(code, 2, "{out}");

    // What-if: the publisher rate halved; nothing saved.
    let (code, out) = opchub(
        dir.path(),
        &db,
        &[
            "settle",
            "--year",
            &year,
            "--preview-from",
            &from,
            "--set",
            "M2.3-publisher.revenue_rate=0.25",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let row = out.lines().find(|l| l.trim_start().starts_with("M2.3-publisher")).unwrap();
    assert!(row.contains("-¥"), "the difference is negative: {row}");
    assert_eq!(batches(dir.path(), &db), 1, "a what-if saves nothing");

    // A malformed list: the line and field are named, nothing is imported.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "uscc,name,reason\n91110106MA01DE7X0X,某公司,理由\n").unwrap();
    let (_, before) = opchub(dir.path(), &db, &["exclusions", "list"]);
    let (code, out) = opchub(
        dir.path(),
        &db,
        &["exclusions", "import", "--kind", "no_support_sanction", bad.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("line 2, uscc") && out.contains("nothing imported"), "{out}");
    let (_, after) = opchub(dir.path(), &db, &["exclusions", "list"]);
    assert_eq!(before, after);

    // Bad input: a year outside the window, an unknown clause; a draft is not exported.
    let (code, out) = opchub(dir.path(), &db, &["settle", "--year", "2019"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("validity window"), "{out}");
    let (code, out) = opchub(dir.path(), &db, &["settle", "--year", &year, "--clause", "M9.9"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(batches(dir.path(), &db), 1);

    // A new list version puts a paid beneficiary under a no-support sanction. A new settlement
    // excludes it; the first batch, replayed with the versions it recorded, still comes out the same.
    let store = opchub_store::Store::connect(&db).await.unwrap();
    let lines = store.settlement_lines(&batch_id, &Default::default()).await.unwrap();
    let paid = lines.iter().find(|l| l.uscc.is_some() && l.amount_fen > 0).unwrap().clone();
    let list = dir.path().join("sanction.csv");
    std::fs::write(
        &list,
        format!(
            "uscc,name,reason\n{},{},失信被执行人\n",
            paid.uscc.clone().unwrap(),
            paid.beneficiary_name
        ),
    )
    .unwrap();
    let (code, out) = opchub(
        dir.path(),
        &db,
        &["exclusions", "import", "--kind", "no_support_sanction", list.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = opchub(dir.path(), &db, &["settle", "--year", &year, "--preview-from", &from]);
    assert_eq!(code, 0, "{out}");
    let newest = store
        .settlement_batches()
        .await
        .unwrap()
        .into_iter()
        .max_by_key(|b| b.created_at)
        .unwrap();
    let again = store.settlement_lines(&newest.id, &Default::default()).await.unwrap();
    let now = again
        .iter()
        .find(|l| l.clause == paid.clause && l.beneficiary == paid.beneficiary)
        .unwrap();
    assert_eq!(
        (now.eligible.as_str(), now.amount_fen),
        ("no", 0),
        "the new list version excludes it"
    );
    let (code, out) = opchub(dir.path(), &db, &["settlement", "replay", &batch_id, "--preview-from", &from]);
    assert_eq!(code, 0, "replayed with the lists of its day: {out}");
    store.close().await;
}
