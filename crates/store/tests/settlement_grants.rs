//! Every yuan once (issue 17), as an auditor would try it against the store: random sequences
//! of entitlements rising and falling (new usage, corrections, exclusions), drafts, confirmations
//! (or none), approvals by a second member and finance payments never leave a key holding more
//! than its latest entitlement and cap, and what the lines granted always adds up to the key.
//! SQLite by default, PostgreSQL (a fresh schema) when `OPCHUB_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fresh_store;
use opchub_domain::Role;
use opchub_store::grants::LinePayment;
use opchub_store::settlement::{Line, LineFilter, NewBatch};
use opchub_store::{Actor, Store, StoreError};
use rand::{Rng, SeedableRng};

const CAP: i64 = 50_000_000; // M2.4: ¥500,000 a year.
const YEAR: i64 = 2027;

async fn user(store: &Store, name: &str, role: Role) -> Actor {
    let u = common::new_user(store, name, role).await;
    Actor::user(&u.id, role.as_str())
}

async fn draft(store: &Store, drafter: &Actor, owner: &str, entitlement: i64, eligible: &str) -> String {
    let line = Line {
        clause: "M2.4".into(),
        beneficiary: "ent-1".into(),
        beneficiary_role: "enterprise".into(),
        beneficiary_name: "北京丰台数智制造有限公司".into(),
        owner_user_id: Some(owner.to_string()),
        eligible: eligible.into(),
        amount_fen: entitlement,
        cap_fen: CAP,
        decision: "{}".into(),
        confirmation: "pending".into(),
        ..Default::default()
    };
    store
        .create_settlement(
            drafter,
            NewBatch {
                year: YEAR,
                clauses: vec!["M2.4".into()],
                as_of: "2027-12-31".into(),
                policy_version: "t".into(),
                lists: "{}".into(),
                lines: vec![line],
                // A window long enough that approval waits for the answer.
                confirm_until_ms: opchub_store::now_ms() + 86_400_000,
                basis_mark: String::new(),
            },
        )
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn random_sequences_never_pay_a_key_more_than_its_entitlement_and_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(dir.path()).await;
    let drafter = user(&store, "cmte-a", Role::Committee).await;
    let approver = user(&store, "cmte-b", Role::Committee).await;
    let finance = user(&store, "fin", Role::Finance).await;
    let owner = user(&store, "ent", Role::Enterprise).await;
    let owner_id = owner.user_id.clone().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let mut approved_batches: Vec<String> = vec![];
    // The last determined entitlement an approval applied (what the key must stand at).
    let mut standing: i64 = 0;
    let mut payments = 0;
    for step in 0..60 {
        match rng.gen_range(0..10) {
            // Usage, corrections and exclusions move the entitlement; a batch is drafted from it.
            0..=5 => {
                let entitlement = rng.gen_range(0..70_000_000i64);
                let eligible = ["yes", "yes", "yes", "no", "unknown"][rng.gen_range(0..5)];
                let entitlement = if eligible == "yes" { entitlement } else { 0 };
                let id = draft(&store, &drafter, &owner_id, entitlement, eligible).await;
                let line = &store.settlement_lines(&id, &LineFilter::default()).await.unwrap()[0];
                let accept = rng.gen_bool(0.7);
                if line.amount_fen > 0 {
                    store.confirm_settlement_line(&owner, &id, "M2.4", "ent-1", accept).await.unwrap();
                }
                // The drafter can never approve alone.
                assert!(matches!(
                    store.approve_settlement(&drafter, &id, "2028-01-31", None).await,
                    Err(StoreError::Conflict("drafter_cannot_approve"))
                ));
                let b = store.approve_settlement(&approver, &id, "2028-01-31", None).await.unwrap();
                let target = entitlement.min(CAP);
                if eligible != "unknown" && (target < standing || (accept && target > standing)) {
                    standing = target;
                }
                if b.status == "approved" {
                    approved_batches.push(id);
                }
            }
            // Finance pays an approved batch (once).
            _ => {
                if let Some(id) = approved_batches.pop() {
                    let r = store
                        .pay_settlement(
                            &finance,
                            &id,
                            &format!("PAY-{step}"),
                            &[LinePayment {
                                clause: "M2.4".into(),
                                beneficiary: "ent-1".into(),
                                payment_reference: format!("BANK-{step}"),
                            }],
                        )
                        .await
                        .unwrap();
                    assert_eq!(r.status, "paid");
                    payments += 1;
                }
            }
        }
        let g = &store.settlement_grants_of("ent-1").await.unwrap();
        let Some(g) = g.first() else { continue };
        assert_eq!(
            g.approved_fen, standing,
            "step {step}: the key stands at the entitlement last applied"
        );
        assert!(g.approved_fen <= CAP);
        assert!(
            g.paid_fen - g.recovery_fen <= g.approved_fen,
            "step {step}: held {} beyond approved {}",
            g.paid_fen - g.recovery_fen,
            g.approved_fen
        );
        let orders: i64 = store
            .settlement_recoveries(Some("ent-1"))
            .await
            .unwrap()
            .iter()
            .map(|o| o.amount_fen)
            .sum();
        assert_eq!(orders, g.recovery_fen, "every reclaimed fen has a recovery order");
    }
    assert!(payments > 3, "the sequence exercised payments ({payments})");
}
