//! Policy: a beneficiary's year-to-date headroom under every cap it has used (the cap ledger of
//! issue 6). Beneficiaries see their own; staff who decide or audit see anyone's.

use crate::{App, AppError, AppResult, Principal};
use opchub_domain::Role;
use opchub_store::caps::CapUse;

/// The caps `beneficiary` (default: the caller's OPC, else the caller) has used. Someone else's
/// is not revealed (404) to a caller who is not committee, audit, finance or platform staff.
pub async fn headroom_for(app: &App, p: &Principal, beneficiary: Option<String>) -> AppResult<Vec<CapUse>> {
    let own = match app.store.opc_of_founder(&p.user.id).await? {
        Some(o) => o.id,
        None => p.user.id.clone(),
    };
    let beneficiary = beneficiary.filter(|b| !b.is_empty()).unwrap_or_else(|| own.clone());
    let staff = matches!(p.role(), Role::Committee | Role::Auditor | Role::Finance | Role::PlatformOperator);
    if beneficiary != own && !staff {
        return Err(AppError::not_found());
    }
    Ok(app.store.caps_of(&beneficiary).await?)
}
