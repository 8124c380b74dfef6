//! Shared by the store's integration tests: a fresh, migrated database (SQLite by default, a
//! fresh PostgreSQL schema when `OPCHUB_TEST_DATABASE_URL` is set) and a simple ledger event.
#![allow(dead_code, clippy::unwrap_used)]

use opchub_ledger::event::{NewEvent, Origin};
use opchub_store::ledger::Item;
use opchub_store::Store;

/// A `skill.call` event from source `s` with id `e{id}`.
pub fn ev(id: usize) -> Item {
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
        list_sub_micro: 0,
        charged_sub_micro: 0,
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

pub async fn fresh_store(dir: &std::path::Path) -> Store {
    let store = Store::connect(&opchub_testkit::db::fresh_database_url(dir).await.unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

/// A user of `role` named `name` (no password), created by the system.
pub async fn new_user(store: &Store, name: &str, role: opchub_domain::Role) -> opchub_store::accounts::User {
    store
        .create_user(
            &opchub_store::Actor::system(),
            opchub_store::accounts::NewUser {
                username: name,
                display_name: name,
                role,
                password_hash: "!",
            },
        )
        .await
        .unwrap()
}
