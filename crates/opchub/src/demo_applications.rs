//! Demo applications (issue 8) for `serve --demo`: the demo OPC's applications at different
//! stages — an M3.2 joint-R&D claim waiting for the science and technology agency, an M5.1
//! compliance-fee claim approved and waiting for the finance bureau, an M8.1 milestone granted —
//! made through the same functions the API uses (forms, evidence, engine, review steps).

use anyhow::{anyhow, Result};
use chrono::Datelike;
use opchub_app::applications::{create_for, review_for, submit_for, upload_for, NewApplicationRequest, ReviewRequest};
use opchub_app::{App, AppError, Principal};
use opchub_funds::Action;
use opchub_store::applications::{AppFilter, Application};
use serde_json::{json, Value};

/// A one-page PDF standing in for a scanned document.
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n";

fn api(e: AppError) -> anyhow::Error {
    anyhow!("demo application: {} {:?}", e.code, e.fields)
}

async fn who(s: &App, username: &str) -> Result<Principal> {
    let user = s
        .store
        .user_by_username(username)
        .await?
        .ok_or_else(|| anyhow!("demo user {username} missing"))?;
    Ok(Principal::cli(user))
}

async fn submitted(s: &App, opc: &Principal, clause: &str, answers: Value) -> Result<Application> {
    let year = opchub_settle::run::today().year();
    let req = NewApplicationRequest {
        clause: clause.into(),
        year: Some(year),
        answers: answers.as_object().cloned().unwrap_or_default(),
    };
    let a = create_for(s, opc, &req).await.map_err(api)?;
    let spec =
        opchub_funds::form_spec(s.policy.as_deref().ok_or_else(|| anyhow!("no policy"))?, clause).ok_or_else(|| anyhow!("no form"))?;
    for e in &spec.evidence {
        let a = s.store.application(&a.id).await?;
        upload_for(
            s,
            opc,
            &a,
            e.index,
            &format!("证明材料-{}.pdf", e.index + 1),
            "application/pdf",
            PDF,
        )
        .await
        .map_err(api)?;
    }
    let v = s.store.application(&a.id).await?.version;
    submit_for(s, opc, &a.id, v).await.map_err(api)
}

async fn step(s: &App, p: &Principal, id: &str, action: Action) -> Result<Application> {
    let version = s.store.application(id).await?.version;
    let req = ReviewRequest {
        version,
        action,
        reason: String::new(),
        amount_fen: None,
    };
    review_for(s, p, id, &req).await.map_err(api)
}

/// Loads the demo applications once (nothing when any application exists). Returns how many.
pub async fn load(s: &App) -> Result<usize> {
    if !s
        .store
        .applications(&AppFilter {
            limit: 1,
            ..AppFilter::default()
        })
        .await?
        .is_empty()
    {
        return Ok(0);
    }
    let (opc, committee, sci, commerce) = (
        who(s, "opc").await?,
        who(s, "committee").await?,
        who(s, "agency").await?,
        who(s, "agency-commerce").await?,
    );
    let today = opchub_settle::run::today().to_string();
    // M3.2: joint R&D with a university, through intake, waiting for the science agency.
    let rd = submitted(
        s,
        &opc,
        "M3.2",
        json!({ "partner_is_university_or_institute": true, "project_id": "RD-DEMO-01",
                "rd_spend": [{ "date": today, "amount_fen": 68_000_000, "note": "与北京交通大学联合研发：智能合同审查模型" }] }),
    )
    .await?;
    step(s, &committee, &rd.id, Action::Pass).await?;
    // M5.1: compliance fees, approved by the committee, waiting for the finance bureau.
    let fees = submitted(
        s,
        &opc,
        "M5.1",
        json!({ "compliance_fees": [{ "date": today, "amount_fen": 3_600_000, "note": "算法备案与数据合规服务" }] }),
    )
    .await?;
    step(s, &committee, &fees.id, Action::Pass).await?;
    step(s, &commerce, &fees.id, Action::Pass).await?;
    step(s, &committee, &fees.id, Action::Approve).await?;
    // M8.1: recognised as 专精特新, granted.
    let growth = submitted(
        s,
        &opc,
        "M8.1",
        json!({ "milestone": "specialised_innovative", "milestone_date": today }),
    )
    .await?;
    step(s, &committee, &growth.id, Action::Pass).await?;
    step(s, &sci, &growth.id, Action::Pass).await?;
    step(s, &committee, &growth.id, Action::Approve).await?;
    Ok(3)
}
