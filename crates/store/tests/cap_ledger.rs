//! Caps across claims: many concurrent approvals against one cap never exceed it, a retried
//! approval is counted once, and the refused ones leave no trace. SQLite by default,
//! PostgreSQL (a fresh schema) when `OPCHUB_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fresh_store;
use opchub_store::caps::CapKey;
use opchub_store::{Actor, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_never_exceed_a_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(dir.path()).await;
    // M2.3 publisher cap: ¥200,000 a year. 30 approvals of ¥15,000 race: 13 fit (¥195,000).
    let key = CapKey {
        clause: "M2.3-publisher".into(),
        beneficiary: "opc-1".into(),
        scope: "year".into(),
        period_key: "2027".into(),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let (store, key) = (store.clone(), key.clone());
        tasks.spawn(async move {
            let reference = format!("batch-1/line-{i}");
            (
                store.consume_cap(&Actor::system(), &key, 20_000_000, 1_500_000, &reference).await,
                reference,
            )
        });
    }
    let (mut ok, mut refused) = (0, 0);
    let mut approved = vec![];
    while let Some(r) = tasks.join_next().await {
        let (r, reference) = r.unwrap();
        match r {
            Ok(_) => {
                ok += 1;
                approved.push(reference);
            }
            Err(StoreError::Conflict("cap_exceeded")) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, refused), (13, 17));
    let used = store.cap_use(&key).await.unwrap().unwrap();
    assert_eq!((used.consumed_fen, used.headroom_fen), (19_500_000, 500_000));
    let records: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cap_consumptions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(records, 13, "refused approvals leave no consumption record");

    // A retried approval (same reference) is not counted twice; the rest of the headroom still fits.
    let again = store.consume_cap(&Actor::system(), &key, 20_000_000, 100, &approved[0]).await;
    assert!(matches!(again, Err(StoreError::Conflict("already_consumed"))), "{again:?}");
    let last = store
        .consume_cap(&Actor::system(), &key, 20_000_000, 500_000, "batch-2/line-0")
        .await
        .unwrap();
    assert_eq!(last.headroom_fen, 0);
    assert_eq!(store.caps_of("opc-1").await.unwrap().len(), 1);
    // Another year is another cap.
    let next = CapKey {
        period_key: "2028".into(),
        ..key
    };
    assert_eq!(
        store
            .consume_cap(&Actor::system(), &next, 20_000_000, 1, "batch-3/line-0")
            .await
            .unwrap()
            .consumed_fen,
        1
    );
}
