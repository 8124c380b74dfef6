//! Ownership rules: which OPCs, tickets and communities a caller may see or change beyond
//! what their role allows. Something a caller may not see is reported as 404, so that one
//! OPC cannot even learn that another OPC's private record exists.

use crate::error::{AppError, AppResult};
use crate::principal::Principal;
use crate::App;
use opchub_domain::{Role, Zone};
use opchub_store::registry::{Community, Opc, Ticket};

/// Staff who may see every OPC (read-only for the auditor).
fn sees_all(role: Role) -> bool {
    matches!(role, Role::Committee | Role::PlatformOperator | Role::Auditor)
}

pub fn sees_occupants(p: Option<&Principal>, c: &Community) -> bool {
    p.is_some_and(|p| sees_all(p.role()) || (p.role() == Role::CommunityOperator && p.user.id == c.operator_user_id))
}

async fn may_see_opc(s: &App, p: &Principal, opc: &Opc) -> AppResult<bool> {
    Ok(match p.role() {
        r if sees_all(r) => true,
        Role::OpcFounder => opc.founder_user_id == p.user.id,
        // M4.3: a specialist serves the OPCs assigned to them, and picks up unassigned ones.
        Role::Specialist => opc.specialist_user_id.as_deref().is_none_or(|sid| sid == p.user.id),
        Role::CommunityOperator => s.store.community(&opc.community_id).await?.operator_user_id == p.user.id,
        _ => false,
    })
}

pub async fn opc_for(s: &App, p: &Principal, id: &str) -> AppResult<Opc> {
    let opc = s.store.opc(id).await?;
    if may_see_opc(s, p, &opc).await? {
        Ok(opc)
    } else {
        Err(AppError::not_found())
    }
}

pub async fn visible_opcs(s: &App, p: &Principal, zone: Option<Zone>, community_id: Option<&str>) -> AppResult<Vec<Opc>> {
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
        _ => Err(AppError::forbidden()),
    }
}

/// The community operator who runs the community, or the platform operator.
pub async fn manage_community(s: &App, p: &Principal, community_id: &str) -> AppResult<Community> {
    let c = s.store.community(community_id).await?;
    match p.role() {
        Role::PlatformOperator => Ok(c),
        Role::CommunityOperator if c.operator_user_id == p.user.id => Ok(c),
        _ => Err(AppError::not_found()),
    }
}

pub async fn ticket_for(s: &App, p: &Principal, id: &str) -> AppResult<Ticket> {
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
        Err(AppError::not_found())
    }
}

/// Replying and closing: the OPC's founder and the serving specialist only.
pub async fn ticket_for_writer(s: &App, p: &Principal, id: &str) -> AppResult<Ticket> {
    let t = ticket_for(s, p, id).await?;
    match p.role() {
        Role::OpcFounder | Role::Specialist => Ok(t),
        _ => Err(AppError::forbidden()),
    }
}

pub async fn visible_tickets(s: &App, p: &Principal) -> AppResult<Vec<Ticket>> {
    match p.role() {
        Role::OpcFounder => match s.store.opc_of_founder(&p.user.id).await? {
            Some(o) => Ok(s.store.tickets_of_opc(&o.id).await?),
            None => Ok(vec![]),
        },
        Role::Specialist => Ok(s.store.ticket_queue(&p.user.id).await?),
        _ => Err(AppError::forbidden()),
    }
}
