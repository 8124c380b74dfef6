//! `opchub integrity scan | list | decide` with the real binary on demo data (issue 18): the scan
//! of the demo year opens findings with a summary table, the list shows them open, and a named
//! committee member proposes upholding one and a second confirms it (two signatures; only
//! committee members may; a decided finding is not decided again).
//! Runs on SQLite, or on PostgreSQL when `OPCHUB_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Datelike;

mod common;

use common::opchub;

#[tokio::test]
async fn scan_list_and_decide_a_finding_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = opchub_testkit::db::fresh_database_url(dir.path()).await.unwrap();
    let (code, out) = opchub(dir.path(), &db, &["demo"]);
    assert_eq!(code, 0, "{out}");
    let year = (chrono::Utc::now() + chrono::Duration::hours(8)).year().to_string();
    let (code, out) = opchub(dir.path(), &db, &["integrity", "scan", "--year", &year]);
    assert_eq!(code, 0, "{out}");
    let opened: i64 = out
        .lines()
        .find(|l| l.starts_with("opened"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no opened row: {out}"));
    assert!(opened >= 1, "the demo's ring is found: {out}");

    let (code, list) = opchub(dir.path(), &db, &["integrity", "list", "--year", &year]);
    assert_eq!(code, 0, "{list}");
    let id = list
        .lines()
        .find(|l| l.contains(" open "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no open finding: {list}"))
        .to_string();

    // Only a committee member decides; an unknown decision or a missing reason changes nothing.
    let decide = |who: &str, decision: &str, reason: &str| {
        opchub(
            dir.path(),
            &db,
            &[
                "integrity",
                "decide",
                "--id",
                &id,
                "--decision",
                decision,
                "--reason",
                reason,
                "--as",
                who,
            ],
        )
    };
    let (code, out) = decide("finance", "uphold", "互刷");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not_committee"), "{out}");
    let (code, out) = decide("committee", "maybe", "互刷");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unknown_decision"), "{out}");
    let (code, out) = decide("committee", "uphold", "  ");
    assert_eq!(code, 2, "{out}");
    let (_, still) = opchub(dir.path(), &db, &["integrity", "list", "--year", &year]);
    assert!(still.lines().any(|l| l.starts_with(&id) && l.contains(" open ")), "{still}");

    // Two signatures: the first decision is a proposal, the proposer cannot confirm it alone.
    let (code, out) = decide("committee", "uphold", "双方互相调用对方技能，资金回流");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" open "), "{out}");
    let (code, out) = decide("committee", "uphold", "再次确认");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("second_member_required"), "{out}");
    let (code, out) = decide("committee2", "uphold", "同意");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("upheld"), "{out}");
    let (code, out) = decide("committee2", "dismiss", "改判");
    assert_eq!(code, 2, "a decided finding is not decided again: {out}");
    let (_, after) = opchub(dir.path(), &db, &["integrity", "list", "--year", &year]);
    assert!(after.lines().any(|l| l.starts_with(&id) && l.contains(" upheld ")), "{after}");
}
