//! Store-level ledger appends across several transactions keep one tree, and every proof the
//! database serves verifies while any flipped bit fails. SQLite by default; PostgreSQL (a
//! fresh schema) when `OPCHUB_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ev, fresh_store};
use opchub_ledger::checkpoint::LedgerKey;
use opchub_store::ledger::{Item, Outcome};

#[tokio::test]
async fn proofs_served_from_the_database_verify_and_any_flipped_bit_fails() {
    use opchub_ledger::merkle::{verify_consistency, verify_inclusion};
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(dir.path()).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(6962);
    let mut size = 0usize;
    let mut checked = 0;
    while size < 700 {
        let batch = rng.gen_range(1..=120);
        store.ledger_append((size..size + batch).map(ev).collect()).await.unwrap();
        size += batch;
        for _ in 0..12 {
            let tree = rng.gen_range(1..=size) as i64;
            let leaf = rng.gen_range(0..tree);
            let (leaf_hash, root, proof) = store.ledger_inclusion(leaf, tree).await.unwrap();
            verify_inclusion(&proof, tree as u64, &root, leaf as u64, &leaf_hash).unwrap();
            // Flip one random bit of the proof, the root or the leaf: verification fails.
            let (mut p2, mut r2, mut l2) = (proof.clone(), root, leaf_hash);
            match rng.gen_range(0..3) {
                0 if !p2.is_empty() => {
                    let i = rng.gen_range(0..p2.len());
                    p2[i][rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8);
                }
                1 => r2[rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8),
                _ => l2[rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8),
            }
            assert!(verify_inclusion(&p2, tree as u64, &r2, leaf as u64, &l2).is_err());

            let old = rng.gen_range(1..=tree);
            let (old_root, new_root, cproof) = store.ledger_consistency(old, tree).await.unwrap();
            verify_consistency(&cproof, tree as u64, &new_root, old as u64, &old_root).unwrap();
            let mut bad_old = old_root;
            bad_old[rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8);
            assert!(verify_consistency(&cproof, tree as u64, &new_root, old as u64, &bad_old).is_err());
            if !cproof.is_empty() {
                let mut c2 = cproof.clone();
                let i = rng.gen_range(0..c2.len());
                c2[i][rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8);
                assert!(verify_consistency(&c2, tree as u64, &new_root, old as u64, &old_root).is_err());
            }
            checked += 1;
        }
    }
    assert!(checked >= 60);
}

#[tokio::test]
async fn many_small_appends_build_the_same_tree_as_one_big_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(dir.path()).await;
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
