//! A Skill Store call's event and its call row commit in one ledger transaction
//! (`SideWrite::SkillCall`, M2.3): the row carries the event's leaf, and a retry leaves the
//! first attempt's row as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fresh_store;
use opchub_domain::Role;
use opchub_ledger::event::{NewEvent, Origin};
use opchub_store::ledger::{Item, Outcome, SideWrite};
use opchub_store::skills::{NewSkill, NewVersion, SkillCall};
use opchub_store::Actor;

fn event(key: &str, latency: i64) -> Item {
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("latency_ms".to_string(), latency.to_string());
    Item::Event(NewEvent {
        source: opchub_store::skills::SOURCE.into(),
        source_event_id: key.into(),
        kind: "skill.call".into(),
        subject: "invoker".into(),
        counterparty: "publisher".into(),
        quantity: 1,
        unit: "call".into(),
        list_fen: 0,
        charged_fen: 0,
        list_sub_micro: 0,
        charged_sub_micro: 0,
        price_version: String::new(),
        occurred_at_ms: opchub_store::now_ms(),
        origin: Origin::Observed,
        attributes,
        corrects_leaf_index: None,
        correction_reason: None,
        requested_by: None,
        approved_by: None,
    })
}

#[tokio::test]
async fn the_call_row_commits_with_its_event_and_takes_its_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(dir.path()).await;
    let user = common::new_user(&store, "publisher", Role::OpcFounder).await;
    let actor = Actor::user(&user.id, "opc_founder");
    let tools = serde_json::json!([]);
    let checks = serde_json::json!({});
    let (skill, version) = store
        .create_skill(
            &actor,
            NewSkill {
                slug: "s",
                name: "s",
                summary: "s",
                kind: "mcp_server",
                category: "agent_tool",
                tags: &[],
                homepage_url: None,
                publisher_user_id: &user.id,
                publisher_party: &user.id,
            },
            NewVersion {
                version: "1.0.0",
                content_hash: "h",
                price_fen: 0,
                endpoint_url: None,
                openapi_url: None,
                tools: &tools,
                tools_hash: "h",
                manifest: None,
                package_b64: None,
                checks: &checks,
            },
        )
        .await
        .unwrap();
    let row = |latency: i64| SkillCall {
        call_key: "k1".into(),
        skill_id: skill.id.clone(),
        version_id: version.id.clone(),
        version_hash: "h".into(),
        tool: "t".into(),
        publisher_party: user.id.clone(),
        invoker_party: "invoker".into(),
        invoker_user_id: "invoker".into(),
        outcome: "ok".into(),
        qualified: true,
        not_qualified_reason: None,
        charged_fen: 0,
        latency_ms: latency,
        request_digest: "r".into(),
        response_digest: "r".into(),
        leaf_index: None,
        day: opchub_store::skills::call_day(opchub_store::now_ms()),
        created_at: opchub_store::now_ms(),
    };
    let out = store
        .ledger_append_with(vec![event("k1", 5)], vec![SideWrite::SkillCall(Box::new(row(5)))])
        .await
        .unwrap();
    let Some(Outcome::Stored(r)) = out.first() else {
        panic!("not stored: {out:?}")
    };
    let stored = store.skill_call("k1").await.unwrap().expect("the row committed with its event");
    assert_eq!(stored.leaf_index, Some(r.leaf_index));
    assert_eq!(stored.latency_ms, 5);

    // A retry with other content: the event is refused, the first row stays as it was.
    let out = store
        .ledger_append_with(vec![event("k1", 9)], vec![SideWrite::SkillCall(Box::new(row(9)))])
        .await
        .unwrap();
    assert!(matches!(out.first(), Some(Outcome::Rejected(_))), "{out:?}");
    let kept = store.skill_call("k1").await.unwrap().unwrap();
    assert_eq!((kept.latency_ms, kept.leaf_index), (5, Some(r.leaf_index)));
}
