//! Replicas share uploaded files through S3-compatible object storage: evidence uploaded
//! through one replica downloads through the other, unchanged (F2). With a local directory of
//! its own, the other replica has no such file (`evidence_missing`) — what sharing the bucket
//! prevents.

use crate::common::*;
use opchub_app::files::{FileStore, S3Config};
use opchub_domain::Zone;
use opchub_testkit::s3::{FakeS3, ACCESS_KEY, SECRET_KEY};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n";

#[tokio::test]
async fn evidence_uploaded_through_one_replica_downloads_through_the_other() {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = FakeS3::start(&tmp.path().join("s3")).await.unwrap();
    s3.create_bucket("opchub").unwrap();
    let cfg = S3Config {
        endpoint: Some(s3.endpoint()),
        region: Some("us-east-1".into()),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(SECRET_KEY.into()),
        allow_http: true,
        ..Default::default()
    };
    let bucket = |replica: &str| {
        FileStore::from_url_with("s3://opchub/prod", &cfg)
            .unwrap()
            .with_spool_dir(tmp.path().join(replica))
    };
    let db = Arc::new(fresh_db().await);
    let key = Arc::new(opchub_ledger::checkpoint::LedgerKey::generate("opchub.test"));
    let a = TestApp::start_files(db.clone(), key.clone(), bucket("spool-a")).await;
    let b = TestApp::start_files(db.clone(), key.clone(), bucket("spool-b")).await;
    let own_dir = TestApp::start_files(db.clone(), key, FileStore::local(tmp.path().join("c"))).await;

    // An OPC registers and drafts an M3.2 application through replica A.
    let (_, ws) = a.community(Zone::HexiArea, 1).await;
    let r = a
        .client()
        .post_json("/api/v1/registrations", registration("repl", &uscc(711), "hexi_area", &ws[0]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let opc = a.client();
    opc.login("repl", PASSWORD).await;
    let r = opc
        .post_json(
            "/api/v1/applications",
            json!({ "clause": "M3.2", "year": this_year(), "answers": {
                "partner_is_university_or_institute": true, "project_id": "RD-1",
                "rd_spend": [{ "date": format!("{}-01-10", this_year()), "amount_fen": 60_000_000 }]
            } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = opc
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/applications/{id}/files?slot=0&name=evidence.pdf"),
            Some(Body::Raw("application/pdf", PDF.to_vec())),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let file_id = r.json()["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/applications/{id}/files/{file_id}");

    // The same session, through replica B: the file is there, byte for byte.
    let mut on_b = opc.clone();
    on_b.base = b.base.clone();
    let r = on_b.get(&path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.text.as_bytes(), PDF);

    // A replica keeping files in a directory of its own has no such file.
    let mut on_c = opc.clone();
    on_c.base = own_dir.base.clone();
    let r = on_c.get(&path).await;
    assert_eq!((r.status, r.code()), (StatusCode::GONE, "evidence_missing".to_string()));

    own_dir.stop().await;
    b.stop().await;
    a.stop().await;
    s3.stop().await;
}
