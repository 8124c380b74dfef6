//! The clients behind an API key (issue 18 item 1, usage ties) stay bounded: at most
//! `MAX_CLIENTS_PER_KEY` fingerprints per key are kept, a known one only has its last sighting
//! moved, and they become `client` signals of the key owner's party.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fresh_store;
use opchub_domain::Role;
use opchub_store::accounts::{NewApiKey, MAX_CLIENTS_PER_KEY};
use opchub_store::Actor;

#[tokio::test]
async fn a_key_keeps_a_bounded_sample_of_its_clients() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(dir.path()).await;
    let user = common::new_user(&store, "operator", Role::CommunityOperator).await;
    let key = store
        .create_api_key(
            &Actor::system(),
            NewApiKey {
                user_id: &user.id,
                name: "agent",
                prefix: "opk_test",
                key_hash: "hash",
                scopes: &["read".to_string()],
                expires_at: None,
            },
        )
        .await
        .unwrap();
    for i in 0..MAX_CLIENTS_PER_KEY + 8 {
        store.record_key_client(&key.id, &format!("fp-{i}"), 1_000 + i).await.unwrap();
    }
    // A known client again: no new row.
    store.record_key_client(&key.id, "fp-0", 9_999).await.unwrap();
    let clients: Vec<String> = store
        .integrity_signals()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.kind == "client")
        .map(|s| {
            assert_eq!(s.party, user.id, "an operator's key is the operator's");
            s.value
        })
        .collect();
    assert_eq!(clients.len() as i64, MAX_CLIENTS_PER_KEY, "{clients:?}");
    assert!(clients.contains(&"fp-0".to_string()) && !clients.contains(&format!("fp-{}", MAX_CLIENTS_PER_KEY)));
}
