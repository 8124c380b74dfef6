//! Policy API: a beneficiary's year-to-date headroom under every cap it has used (the cap
//! ledger of issue 6). Beneficiaries see their own; staff who decide or audit see anyone's
//! (`opchub_app::policy`).

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use opchub_store::caps::CapUse;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeadroomQuery {
    /// Default: the caller's OPC, else the caller.
    pub beneficiary: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/policy/headroom", tag = "policy", params(HeadroomQuery), responses((status = 200, body = [CapUse]), (status = 404)))]
pub async fn headroom(State(s): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<HeadroomQuery>) -> ApiResult<Json<Vec<CapUse>>> {
    let p = caller.require()?;
    Ok(Json(opchub_app::policy::headroom_for(&s, p, q.beneficiary).await?))
}
