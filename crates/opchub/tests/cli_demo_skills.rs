//! The demo Skill Store (M2.3) with the real binary: `opchub demo` lists approved skills of
//! every kind and category with Chinese and English names, searchable in both languages, with
//! counts and ratings; the Agent Skill packages install with an invoker's key; loading twice
//! adds nothing; the ledger still verifies. Runs on SQLite, or on PostgreSQL when
//! `OPCHUB_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::collections::BTreeSet;

mod common;

use common::{opchub, serve};

/// An API key of a demo account, created through its browser session.
async fn demo_key(base: &str, username: &str) -> String {
    common::Api::login_as(base, username, "opchub-demo").await.key
}

async fn get(base: &str, path: &str) -> Value {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

fn slugs(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| l["skill"]["slug"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_demo_lists_approved_searchable_skills_of_every_kind_with_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = opchub_testkit::db::fresh_database_url(dir.path()).await.unwrap();
    let (code, out) = opchub(dir.path(), &db, &["demo"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("skills listed in the Skill Store"), "{out}");
    // A second load adds nothing.
    let (code, out) = opchub(dir.path(), &db, &["demo"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("skills listed"), "{out}");
    // The demo's calls are ledger events like any other: the ledger verifies.
    let (code, out) = opchub(dir.path(), &db, &["ledger", "verify"]);
    assert_eq!(code, 0, "{out}");

    let (mut child, base) = serve(dir.path(), &db);
    let all = get(&base, "/api/v1/skills").await;
    let listings = all.as_array().unwrap();
    assert!(listings.len() >= 6, "{all:#}");
    let kinds: BTreeSet<_> = listings.iter().map(|l| l["skill"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 4, "every kind: {kinds:?}");
    let categories: BTreeSet<_> = listings.iter().map(|l| l["skill"]["category"].as_str().unwrap()).collect();
    assert_eq!(categories.len(), 3, "every category: {categories:?}");
    for l in listings {
        assert_eq!(l["version"], "1.0.0", "listed with an approved version: {l:#}");
        let name = l["skill"]["name"].as_str().unwrap();
        assert!(
            name.chars().any(|c| c > '\u{2e80}') && name.chars().any(|c| c.is_ascii_alphabetic()),
            "{name}"
        );
        assert!(l["counts"]["distinct_qualified_invokers"].as_i64().unwrap() > 0, "{l:#}");
        assert!(l["counts"]["rating_x100"].as_i64().unwrap() >= 400, "{l:#}");
    }
    // Ranked by distinct qualified invokers.
    let invokers: Vec<i64> = listings
        .iter()
        .map(|l| l["counts"]["distinct_qualified_invokers"].as_i64().unwrap())
        .collect();
    assert!(invokers.windows(2).all(|w| w[0] >= w[1]), "{invokers:?}");

    // Searchable in Chinese and English, with filters.
    assert!(slugs(&get(&base, "/api/v1/skills?q=%E5%8F%91%E7%A5%A8").await).contains("invoice-organizer"));
    assert!(slugs(&get(&base, "/api/v1/skills?q=invoice").await).contains("invoice-organizer"));
    assert!(slugs(&get(&base, "/api/v1/skills?q=%E6%94%BF%E7%AD%96").await).contains("fengtai-policy-qa"));
    let packages = slugs(&get(&base, "/api/v1/skills?kind=agent_skill").await);
    assert_eq!(
        packages,
        BTreeSet::from(["contract-review-checklist".into(), "invoice-organizer".into()])
    );
    assert!(slugs(&get(&base, "/api/v1/skills?category=aigc_production").await).contains("short-video-script"));

    // The store pages are populated.
    let page = reqwest::get(format!("{base}/skills")).await.unwrap().text().await.unwrap();
    assert!(
        page.contains("id=\"skill-invoice-organizer\"") && page.contains("发票整理助手"),
        "{page}"
    );
    let d = get(&base, "/api/v1/skills/fengtai-policy-qa").await;
    assert_eq!(d["live_version"]["status"], "approved");
    assert!(d["skill"]["summary"].as_str().unwrap().contains(".invalid") || d["skill"]["summary"].as_str().unwrap().contains("演示"));

    // A package installs with an invoker's key.
    let key = demo_key(&base, "opc12").await;
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/skills/invoice-organizer/package"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let zip = r.bytes().await.unwrap();
    let p = opchub_skills::package::inspect(&zip, Default::default()).unwrap();
    assert_eq!(p.manifest.name, "invoice-organizer");
    let d = get(&base, "/api/v1/skills/invoice-organizer").await;
    assert_eq!(d["counts"]["installs"], 1);

    child.kill().unwrap();
    child.wait().unwrap();
}
