//! The OpenAPI document is a contract: it is generated from the code and must equal the
//! committed golden file. Regenerate deliberately with `UPDATE_GOLDEN=1 cargo test`.

use crate::common::{self, TestApp};
use reqwest::StatusCode;

use std::path::PathBuf;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[test]
fn openapi_document_matches_the_golden_file() {
    let generated = opchub_web::openapi::document_json();
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(golden_path(), &generated).unwrap();
    }
    let golden = std::fs::read_to_string(golden_path()).unwrap_or_default();
    assert!(
        generated == golden,
        "the OpenAPI document changed; review the diff and run `UPDATE_GOLDEN=1 cargo test -p opchub-web --test integration openapi_golden`"
    );
    let v: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(v["openapi"], "3.1.0");
}

#[test]
fn every_api_route_is_documented_with_its_method() {
    let doc: serde_json::Value = serde_json::from_str(&opchub_web::openapi::document_json()).unwrap();
    let mut missing = vec![];
    for (method, path, _, _) in opchub_web::routes::rules() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        let m = method.as_str().to_lowercase();
        if doc["paths"][path][&m].is_null() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "API routes missing from the OpenAPI document: {missing:?}");
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = common::TestApp::start().await;
    let served = app.client().get("/api/openapi.json").await.json();
    let generated: serde_json::Value = serde_json::from_str(&opchub_web::openapi::document_json()).unwrap();
    assert_eq!(served, generated);
}

/// Issue 21 item 7: the API reference page, generated from the same document, lists every
/// operation by feature with its parameters and responses, in Chinese by default, and every
/// page's footer links it.
#[tokio::test]
async fn the_api_reference_page_lists_every_operation_of_the_document() {
    let app = TestApp::start().await;
    let anon = app.client();
    let r = anon.get("/api/reference").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let page = common::unescape(&r.text);
    let doc = serde_json::to_value(opchub_web::openapi::document()).unwrap();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            assert!(
                page.contains(&format!("data-method=\"{method}\" data-path=\"{path}\"")),
                "{method} {path} is on the page"
            );
        }
    }
    assert!(operations > 100, "{operations} operations");
    assert_eq!(page.matches("class=\"panel api-op\"").count(), operations);
    assert!(page.contains("<h1>接口参考</h1>") && page.contains("leaf_index") && page.contains("必填"));
    // Each feature is named in words (every tag of the document has a label).
    for tag in ["用量账本", "技能商店", "免申即享结算", "账单与付款"] {
        assert!(page.contains(&format!(">{tag} <span")), "{tag}");
    }
    let tags: std::collections::BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|i| i.as_object().unwrap().values())
        .filter_map(|o| o["tags"][0].as_str())
        .collect();
    for tag in tags {
        assert!(
            !page.contains(&format!("<h2 id=\"tag-{tag}\">{tag} ")),
            "the feature {tag} has no label"
        );
    }
    let home = common::unescape(&anon.get("/").await.text);
    assert!(home.contains("href=\"/api/reference\""), "the footer links it");
}
