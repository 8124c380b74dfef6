//! The OpenAPI document is a contract: it is generated from the code and must equal the
//! committed golden file. Regenerate deliberately with `UPDATE_GOLDEN=1 cargo test`.

use crate::common;

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
