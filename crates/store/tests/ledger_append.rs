//! Store-level ledger appends across several transactions keep one tree, and every proof the
//! database serves verifies while any flipped bit fails. SQLite by default; PostgreSQL (a
//! fresh schema) when `OPCHUB_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use opchub_ledger::checkpoint::LedgerKey;
use opchub_ledger::event::{NewEvent, Origin};
use opchub_store::ledger::{Item, Outcome};
use opchub_store::Store;

fn ev(id: usize) -> Item {
    Item::Event(NewEvent {
        source: "s".into(),
        source_event_id: format!("e{id}"),
        kind: "skill.call".into(),
        subject: "a".into(),
        counterparty: "b".into(),
        quantity: 1,
        unit: "call".into(),
        list_fen: 0,
        charged_fen: 0,
        price_version: String::new(),
        occurred_at_ms: opchub_store::now_ms(),
        origin: Origin::Observed,
        attributes: Default::default(),
        corrects_leaf_index: None,
        correction_reason: None,
        requested_by: None,
        approved_by: None,
    })
}

#[tokio::test]
async fn many_small_appends_build_the_same_tree_as_one_big_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("l.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let key = LedgerKey::generate("t");
    let mut next = 0;
    for batch in [1usize, 2, 3, 7, 10, 1, 1, 40] {
        let items: Vec<Item> = (next..next + batch).map(ev).collect();
        let out = store.ledger_append(items).await.unwrap();
        assert!(out.iter().all(|o| matches!(o, Outcome::Stored(_))));
        next += batch;
    }
    store.ledger_checkpoint(&key, "o", "t").await.unwrap();
    let report = store.ledger_verify(&key.verifier_key(), &|_| {}).await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.events, next as i64);
}
