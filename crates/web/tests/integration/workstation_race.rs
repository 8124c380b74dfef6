//! M4.1: many OPCs claim the last free workstation at the same moment, through two server
//! replicas sharing one database. Exactly one wins; every other gets 409 `workstation_taken`
//! and leaves nothing behind (no account, no company, no audit entry).

use crate::common::*;
use opchub_domain::Zone;
use reqwest::StatusCode;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_claim_of_the_last_workstation_wins() {
    let app = TestApp::start().await;
    let replica = TestApp::start_on(app.db.clone()).await;
    for round in 0..3u32 {
        let (cid, ws) = app.community(Zone::ZhongguancunFengtaiPark, 1).await;
        let audit_before = audit_count(&app.store).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8u32 {
            let base = if i % 2 == 0 { app.base.clone() } else { replica.base.clone() };
            let body = registration(
                &format!("racer{round}_{i}"),
                &uscc(100 + round * 10 + i),
                "zhongguancun_fengtai_park",
                &ws[0],
            );
            let barrier = barrier.clone();
            tasks.spawn(async move {
                let c = Client::new(&base);
                barrier.wait().await;
                let r = c.post_json("/api/v1/registrations", body).await;
                (r.status, r.code())
            });
        }
        let mut won = 0;
        let mut lost = 0;
        while let Some(res) = tasks.join_next().await {
            match res.unwrap() {
                (StatusCode::CREATED, _) => won += 1,
                (StatusCode::CONFLICT, code) if code == "workstation_taken" => lost += 1,
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!((won, lost), (1, 7), "round {round}");
        let c = app.store.community(&cid).await.unwrap();
        assert_eq!((c.workstations_free, c.workstations_occupied), (0, 1));
        assert_eq!(app.store.opcs(Some(&cid), None, None).await.unwrap().len(), 1);
        let mut accounts = 0;
        for i in 0..8 {
            if app.store.user_by_username(&format!("racer{round}_{i}")).await.unwrap().is_some() {
                accounts += 1;
            }
        }
        assert_eq!(accounts, 1, "losers' accounts were rolled back");
        // The winner's registration wrote its entries (user, OPC); the losers wrote none.
        assert_eq!(audit_count(&app.store).await, audit_before + 2);
    }
    replica.stop().await;
}
