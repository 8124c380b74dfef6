//! Ownership rules: which OPCs, tickets and communities a caller may see or change beyond
//! what their role allows. Something a caller may not see is reported as 404, so that one
//! OPC cannot even learn that another OPC's private record exists.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use opchub_domain::{Role, Zone};
use opchub_store::registry::{Community, Opc, Ticket};

/// Staff who may see every OPC (read-only for the auditor).
fn sees_all(role: Role) -> bool {
    matches!(role, Role::Committee | Role::PlatformOperator | Role::Auditor)
}

pub fn sees_occupants(p: Option<&Principal>, c: &Community) -> bool {
    p.is_some_and(|p| sees_all(p.role()) || (p.role() == Role::CommunityOperator && p.user.id == c.operator_user_id))
}

async fn may_see_opc(s: &AppState, p: &Principal, opc: &Opc) -> ApiResult<bool> {
    Ok(match p.role() {
        r if sees_all(r) => true,
        Role::OpcFounder => opc.founder_user_id == p.user.id,
        // M4.3: a specialist serves the OPCs assigned to them, and picks up unassigned ones.
        Role::Specialist => opc.specialist_user_id.as_deref().is_none_or(|sid| sid == p.user.id),
        Role::CommunityOperator => s.store.community(&opc.community_id).await?.operator_user_id == p.user.id,
        _ => false,
    })
}

pub async fn opc_for(s: &AppState, p: &Principal, id: &str) -> ApiResult<Opc> {
    let opc = s.store.opc(id).await?;
    if may_see_opc(s, p, &opc).await? {
        Ok(opc)
    } else {
        Err(ApiError::not_found())
    }
}

pub async fn visible_opcs(s: &AppState, p: &Principal, zone: Option<Zone>, community_id: Option<&str>) -> ApiResult<Vec<Opc>> {
    let all = s.store.opcs(community_id, zone, None).await?;
    match p.role() {
        r if sees_all(r) => Ok(all),
        Role::Specialist => Ok(all
            .into_iter()
            .filter(|o| o.specialist_user_id.as_deref() == Some(p.user.id.as_str()))
            .collect()),
        Role::CommunityOperator => {
            let mine: Vec<String> = s
                .store
                .communities(None, Some(&p.user.id))
                .await?
                .into_iter()
                .map(|c| c.id)
                .collect();
            Ok(all.into_iter().filter(|o| mine.contains(&o.community_id)).collect())
        }
        _ => Err(ApiError::forbidden()),
    }
}

/// The community operator who runs the community, or the platform operator.
pub async fn manage_community(s: &AppState, p: &Principal, community_id: &str) -> ApiResult<Community> {
    let c = s.store.community(community_id).await?;
    match p.role() {
        Role::PlatformOperator => Ok(c),
        Role::CommunityOperator if c.operator_user_id == p.user.id => Ok(c),
        _ => Err(ApiError::not_found()),
    }
}

pub async fn ticket_for(s: &AppState, p: &Principal, id: &str) -> ApiResult<Ticket> {
    let t = s.store.ticket(id).await?;
    let opc = s.store.opc(&t.opc_id).await?;
    let ok = match p.role() {
        Role::Committee | Role::Auditor => true,
        Role::OpcFounder | Role::Specialist => may_see_opc(s, p, &opc).await?,
        _ => false,
    };
    if ok {
        Ok(t)
    } else {
        Err(ApiError::not_found())
    }
}

/// Replying and closing: the OPC's founder and the serving specialist only.
pub async fn ticket_for_writer(s: &AppState, p: &Principal, id: &str) -> ApiResult<Ticket> {
    let t = ticket_for(s, p, id).await?;
    match p.role() {
        Role::OpcFounder | Role::Specialist => Ok(t),
        _ => Err(ApiError::forbidden()),
    }
}

pub async fn visible_tickets(s: &AppState, p: &Principal) -> ApiResult<Vec<Ticket>> {
    match p.role() {
        Role::OpcFounder => match s.store.opc_of_founder(&p.user.id).await? {
            Some(o) => Ok(s.store.tickets_of_opc(&o.id).await?),
            None => Ok(vec![]),
        },
        Role::Specialist => Ok(s.store.ticket_queue(&p.user.id).await?),
        _ => Err(ApiError::forbidden()),
    }
}
