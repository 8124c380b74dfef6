//! The registry: communities and their workstations (M1), OPCs and the registration wizard
//! (M4.1, M4.2, G2), enterprises, specialists and the service tickets (M4.3). Who may act on
//! which community, OPC or ticket is decided in [`crate::access`]; the role gate is the route
//! table's.

use crate::access;
use crate::crypto;
use crate::error::{AppError, AppResult};
use crate::{App, Principal};
use opchub_domain::input::Checker;
use opchub_domain::{Role, WorkstationStatus, Zone};
use opchub_store::accounts::{NewUser, User};
use opchub_store::registry::{Community, Enterprise, Founder, NewCommunity, Opc, RegisterOpc, Ticket, TicketMessage, Workstation};
use serde::Deserialize;
use utoipa::ToSchema;

crate::module_errors! {
    /// What the registry refuses.
    pub enum RegistryError {
        /// The founder has registered no OPC yet.
        NoCompany => (Conflict, "no_company"),
    }
}

/// A zone filter from a query: empty means none, an unknown code is a field error.
pub fn parse_zone_filter(z: Option<&str>) -> AppResult<Option<Zone>> {
    match z.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| AppError::field("zone", "unknown_zone")),
    }
}

// ---------------------------------------------------------------- communities (M1)

/// Communities, optionally of one G2 zone (a zone code; empty means all).
pub async fn communities(app: &App, zone: Option<&str>) -> AppResult<Vec<Community>> {
    let zone = parse_zone_filter(zone)?;
    Ok(app.store.communities(zone, None).await?)
}

#[derive(serde::Serialize, ToSchema)]
pub struct CommunityDetail {
    pub community: Community,
    /// Which OPC occupies a workstation is shown only to the community's operator and to staff.
    pub workstations: Vec<Workstation>,
}

pub async fn community(app: &App, caller: Option<&Principal>, id: &str) -> AppResult<CommunityDetail> {
    let community = app.store.community(id).await?;
    let mut workstations = app.store.workstations(id).await?;
    if !access::sees_occupants(caller, &community) {
        for w in &mut workstations {
            w.opc_id = None;
        }
    }
    Ok(CommunityDetail { community, workstations })
}

#[derive(Deserialize, ToSchema)]
pub struct NewCommunityRequest {
    pub name: Option<String>,
    pub company_name: Option<String>,
    pub company_uscc: Option<String>,
    pub zone: Option<String>,
    pub address: Option<String>,
    /// Number of workstations to create (1–2000).
    pub workstations: Option<i64>,
    /// The community operator who runs it; a community operator creating their own omits it.
    pub operator_user_id: Option<String>,
}

pub async fn create_community(app: &App, p: &Principal, r: &NewCommunityRequest) -> AppResult<Community> {
    let mut c = Checker::new();
    let name = c.text("name", r.name.as_deref(), 2, 100);
    let company = c.text("company_name", r.company_name.as_deref(), 4, 100);
    let uscc = c.uscc("company_uscc", r.company_uscc.as_deref());
    let zone = c.zone("zone", r.zone.as_deref());
    let address = c.text("address", r.address.as_deref(), 4, 200);
    let n = r.workstations.unwrap_or(0);
    if !(1..=2000).contains(&n) {
        c.errors.insert("workstations".into(), "out_of_range".into());
    }
    let operator = match p.role() {
        Role::CommunityOperator => p.user.id.clone(),
        _ => c.text("operator_user_id", r.operator_user_id.as_deref(), 1, 64),
    };
    let (Some(uscc), Some(zone), true) = (uscc, zone, c.ok()) else {
        return Err(AppError::checked(c));
    };
    Ok(app
        .store
        .create_community(
            &p.actor(),
            NewCommunity {
                name: &name,
                company_name: &company,
                company_uscc: &uscc,
                zone,
                address: &address,
                operator_user_id: &operator,
                workstations: n as u32,
            },
        )
        .await?)
}

#[derive(Deserialize, ToSchema)]
pub struct AddWorkstations {
    /// 1–500
    pub count: i64,
}

pub async fn add_workstations(app: &App, p: &Principal, community_id: &str, count: i64) -> AppResult<Community> {
    access::manage_community(app, p, community_id).await?;
    if !(1..=500).contains(&count) {
        return Err(AppError::field("count", "out_of_range"));
    }
    Ok(app.store.add_workstations(&p.actor(), community_id, count as u32).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct SetWorkstationStatus {
    /// `free` or `reserved`
    pub status: String,
}

/// Frees or reserves a workstation of a community the caller manages.
pub async fn set_workstation(app: &App, p: &Principal, id: &str, status: &str) -> AppResult<Workstation> {
    let ws = app.store.workstation(id).await?;
    access::manage_community(app, p, &ws.community_id).await?;
    let status: WorkstationStatus = status.parse().map_err(|_| AppError::field("status", "unknown_status"))?;
    Ok(app.store.set_workstation_status(&p.actor(), id, status).await?)
}

// ---------------------------------------------------------------- registration (M4.1, M4.2, G2)

/// The registration wizard's input (M4.1, M4.2, G2).
#[derive(Deserialize, ToSchema, Default)]
pub struct RegistrationRequest {
    /// New account's login name; omit when an OPC-founder account is already signed in.
    pub username: Option<String>,
    pub password: Option<String>,
    pub founder_name: Option<String>,
    pub company_name: Option<String>,
    /// 统一社会信用代码; omit and set `not_yet_registered` to open a licence ticket instead.
    pub uscc: Option<String>,
    #[serde(default)]
    pub not_yet_registered: bool,
    #[serde(default)]
    pub tax_registered: bool,
    /// Main industry, GB/T 4754-2017 (e.g. `I6513`); optional. F3's restricted-industry
    /// catalogue is matched by it.
    pub industry_code: Option<String>,
    pub zone: Option<String>,
    pub theme_package: Option<String>,
    pub workstation_id: Option<String>,
    /// The founder's 公民身份号码 (GB 11643; optional here, recordable later on the record):
    /// validated, kept only as a keyed hash, never shown (issue 18 item 1).
    pub founder_id_number: Option<String>,
    /// The founder's mobile number (optional; kept only as a keyed hash).
    pub founder_phone: Option<String>,
    /// 注册地址 as on the business licence (optional here, recordable later on the record);
    /// two parties registered at one address are related (issue 18 item 1).
    pub registered_address: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct RegistrationResult {
    pub opc: Opc,
    pub user: User,
}

/// Validates and registers; used by the API and by the wizard page. The founder's keys bill
/// the new OPC from now on, so the key cache is forgotten here.
pub async fn register(app: &App, caller: Option<&Principal>, r: &RegistrationRequest) -> AppResult<(Opc, User)> {
    let mut c = Checker::new();
    let existing = caller.map(|p| p.user.clone());
    if let Some(u) = &existing {
        if u.role != Role::OpcFounder {
            return Err(AppError::forbidden());
        }
    }
    let (username, password) = if existing.is_none() {
        let username = c.username("username", r.username.as_deref());
        let password = c.password("password", r.password.as_deref(), &username);
        (username, password)
    } else {
        (String::new(), String::new())
    };
    let founder_name = c.text("founder_name", r.founder_name.as_deref(), 2, 50);
    let company_name = c.text("company_name", r.company_name.as_deref(), 4, 100);
    let uscc = if r.not_yet_registered && r.uscc.as_deref().map(str::trim).unwrap_or("").is_empty() {
        None
    } else {
        c.uscc("uscc", r.uscc.as_deref())
    };
    let zone = c.zone("zone", r.zone.as_deref());
    let industry_code = c.industry_code("industry_code", r.industry_code.as_deref());
    let theme = c.text("theme_package", r.theme_package.as_deref(), 1, 64);
    let ws = c.text("workstation_id", r.workstation_id.as_deref(), 1, 64);
    // Who is who (issue 18 item 1): checked with the rest, recorded with the new OPC.
    let id_given = r.founder_id_number.as_deref().is_some_and(|v| !v.trim().is_empty());
    if id_given {
        c.resident_id("founder_id_number", r.founder_id_number.as_deref());
    }
    c.mobile_phone("founder_phone", r.founder_phone.as_deref());
    if !id_given && r.founder_phone.as_deref().is_some_and(|v| !v.trim().is_empty()) {
        c.fail("founder_id_number", "required");
    }
    let address = crate::persons::check_optional_address(&mut c, r.registered_address.as_deref());
    let (Some(zone), true) = (zone, c.ok()) else {
        return Err(AppError::checked(c));
    };
    if id_given {
        // The founder is recorded after the OPC: fail before writing anything when it cannot be.
        crate::persons::key(app)?;
    }
    let password_hash = if existing.is_none() {
        crypto::hash_password(&password)?
    } else {
        String::new()
    };
    let actor = caller.map(|p| p.actor()).unwrap_or_else(opchub_store::Actor::system);
    let founder = match &existing {
        Some(u) => Founder::Existing(u),
        None => Founder::New(NewUser {
            username: &username,
            display_name: &founder_name,
            role: Role::OpcFounder,
            password_hash: &password_hash,
        }),
    };
    let reg = RegisterOpc {
        founder,
        name: &company_name,
        uscc: uscc.as_ref(),
        founder_name: &founder_name,
        zone,
        theme_package: &theme,
        workstation_id: &ws,
        tax_registered: r.tax_registered,
        industry_code: industry_code.as_ref(),
    };
    let res = app.store.register_opc(&actor, reg).await;
    // The founder's keys now bill the new OPC.
    app.keys.forget_all();
    if let Err(opchub_store::StoreError::Conflict(code)) = &res {
        let field = match *code {
            "uscc_taken" => "uscc",
            "username_taken" => "username",
            "workstation_taken" => "workstation_id",
            _ => "",
        };
        let mut e = AppError::conflict(code);
        if !field.is_empty() {
            e.fields.insert(field.into(), (*code).into());
        }
        return Err(e);
    }
    let (opc, user) = res?;
    if id_given {
        let person = crate::persons::PersonChange {
            role: Some("founder".into()),
            name: Some(founder_name),
            id_number: r.founder_id_number.clone(),
            phone: r.founder_phone.clone(),
        };
        crate::persons::add_person_as(app, &actor, "opc", &opc.id, &person).await?;
    }
    if let Some(a) = &address {
        crate::persons::set_address_as(app, &actor, "opc", &opc.id, a).await?;
    }
    Ok((opc, user))
}

// ---------------------------------------------------------------- OPCs

/// The caller's own OPC.
pub async fn my_opc(app: &App, p: &Principal) -> AppResult<Opc> {
    app.store.opc_of_founder(&p.user.id).await?.ok_or_else(AppError::not_found)
}

/// The OPCs the caller may see, optionally of one zone (a zone code) or community.
pub async fn opcs(app: &App, p: &Principal, zone: Option<&str>, community_id: Option<&str>) -> AppResult<Vec<Opc>> {
    let zone = parse_zone_filter(zone)?;
    access::visible_opcs(app, p, zone, community_id).await
}

#[derive(Deserialize, ToSchema)]
pub struct AssignSpecialist {
    pub specialist_user_id: String,
}

/// Assigns an OPC its specialist (the committee, M4.3).
pub async fn assign_specialist(app: &App, p: &Principal, opc_id: &str, specialist_user_id: &str) -> AppResult<Opc> {
    Ok(app.store.assign_specialist(&p.actor(), opc_id, specialist_user_id).await?)
}

// ---------------------------------------------------------------- enterprises

#[derive(Deserialize, ToSchema)]
pub struct NewEnterpriseRequest {
    pub name: Option<String>,
    pub uscc: Option<String>,
    pub zone: Option<String>,
    /// The owner's new account.
    pub username: Option<String>,
    pub password: Option<String>,
    pub contact_name: Option<String>,
    /// 住所 as on the business licence (optional; recordable later). Two parties registered at
    /// one address are related (issue 18 item 1).
    #[serde(default)]
    pub registered_address: Option<String>,
}

/// Registers an enterprise with its owner's new account.
pub async fn create_enterprise(app: &App, p: &Principal, r: &NewEnterpriseRequest) -> AppResult<Enterprise> {
    let mut c = Checker::new();
    let name = c.text("name", r.name.as_deref(), 4, 100);
    let uscc = c.uscc("uscc", r.uscc.as_deref());
    let zone = c.zone("zone", r.zone.as_deref());
    let username = c.username("username", r.username.as_deref());
    let password = c.password("password", r.password.as_deref(), &username);
    let contact = c.text("contact_name", r.contact_name.as_deref(), 2, 50);
    let address = crate::persons::check_optional_address(&mut c, r.registered_address.as_deref());
    let (Some(uscc), Some(zone), true) = (uscc, zone, c.ok()) else {
        return Err(AppError::checked(c));
    };
    let hash = crypto::hash_password(&password)?;
    let owner = NewUser {
        username: &username,
        display_name: &contact,
        role: Role::Enterprise,
        password_hash: &hash,
    };
    let (e, _) = app.store.create_enterprise(&p.actor(), owner, &name, &uscc, zone).await?;
    if let Some(a) = &address {
        crate::persons::set_address_as(app, &p.actor(), "enterprise", &e.id, a).await?;
    }
    Ok(e)
}

// ---------------------------------------------------------------- tickets (M4.3)

#[derive(Deserialize, ToSchema)]
pub struct NewTicketRequest {
    pub subject: Option<String>,
    pub body: Option<String>,
}

/// A founder opens a question ticket for their OPC.
pub async fn open_ticket(app: &App, p: &Principal, r: &NewTicketRequest) -> AppResult<Ticket> {
    let opc = app
        .store
        .opc_of_founder(&p.user.id)
        .await?
        .ok_or_else(|| AppError::from(RegistryError::NoCompany))?;
    let mut c = Checker::new();
    let subject = c.text("subject", r.subject.as_deref(), 2, 120);
    let body = c.text("body", r.body.as_deref(), 1, 4000);
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    Ok(app
        .store
        .create_ticket(&p.actor(), &opc.id, &p.user.id, "question", &subject, &body)
        .await?)
}

#[derive(serde::Serialize, ToSchema)]
pub struct TicketThread {
    pub ticket: Ticket,
    pub messages: Vec<TicketMessage>,
}

/// A ticket the caller may read, with its messages.
pub async fn ticket(app: &App, p: &Principal, id: &str) -> AppResult<TicketThread> {
    let ticket = access::ticket_for(app, p, id).await?;
    let messages = app.store.ticket_messages(id).await?;
    Ok(TicketThread { ticket, messages })
}

#[derive(Deserialize, ToSchema)]
pub struct ReplyRequest {
    pub body: Option<String>,
}

pub async fn reply(app: &App, p: &Principal, id: &str, body: Option<&str>) -> AppResult<Ticket> {
    access::ticket_for_writer(app, p, id).await?;
    let mut c = Checker::new();
    let body = c.text("body", body, 1, 4000);
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    Ok(app.store.reply_ticket(&p.actor(), id, &p.user, &body).await?)
}

pub async fn close_ticket(app: &App, p: &Principal, id: &str) -> AppResult<Ticket> {
    access::ticket_for_writer(app, p, id).await?;
    Ok(app.store.close_ticket(&p.actor(), id).await?)
}

// ---------------------------------------------------------------- what the pages show

/// The home page's live counts.
pub async fn counts(app: &App) -> AppResult<opchub_store::registry::Counts> {
    Ok(app.store.counts().await?)
}

/// The M4.2 theme packages.
pub async fn theme_packages(app: &App) -> AppResult<Vec<opchub_store::registry::ThemePackage>> {
    Ok(app.store.theme_packages().await?)
}

/// The district companies (M2.4).
pub async fn enterprises(app: &App) -> AppResult<Vec<Enterprise>> {
    Ok(app.store.enterprises().await?)
}

/// The OPC a founder registered, if any.
pub async fn opc_of_founder(app: &App, user_id: &str) -> AppResult<Option<Opc>> {
    Ok(app.store.opc_of_founder(user_id).await?)
}

/// Communities, optionally in one zone (a zone that does not parse is no filter, as on the pages).
pub async fn communities_in(app: &App, zone: Option<Zone>) -> AppResult<Vec<Community>> {
    Ok(app.store.communities(zone, None).await?)
}

/// What the registration wizard offers in a zone (M4.1): each community with free workstations,
/// with those workstations; and the theme packages (M4.2).
pub struct WizardChoices {
    pub communities: Vec<(Community, Vec<Workstation>)>,
    pub packages: Vec<opchub_store::registry::ThemePackage>,
}

pub async fn wizard_choices(app: &App, zone: Zone) -> AppResult<WizardChoices> {
    let mut communities = Vec::new();
    for c in app
        .store
        .communities(Some(zone), None)
        .await?
        .into_iter()
        .filter(|c| c.workstations_free > 0)
    {
        let free: Vec<Workstation> = app
            .store
            .workstations(&c.id)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|w| w.status == WorkstationStatus::Free)
            .collect();
        communities.push((c, free));
    }
    let packages = app.store.theme_packages().await.unwrap_or_default();
    Ok(WizardChoices { communities, packages })
}

/// A community's page: its workstations, whether the caller manages it, and its occupants for
/// those who may see them (the community's operator and staff).
pub struct CommunityPage {
    pub community: Community,
    pub workstations: Vec<Workstation>,
    pub manage: bool,
    pub occupants: Vec<Opc>,
}

pub async fn community_page(app: &App, caller: Option<&Principal>, id: &str) -> AppResult<CommunityPage> {
    let community = app.store.community(id).await?;
    let workstations = app.store.workstations(id).await.unwrap_or_default();
    let manage = caller.is_some_and(|p| p.role() == Role::PlatformOperator || p.user.id == community.operator_user_id);
    let occupants = if access::sees_occupants(caller, &community) {
        app.store.opcs(Some(id), None, None).await.unwrap_or_default()
    } else {
        vec![]
    };
    Ok(CommunityPage {
        community,
        workstations,
        manage,
        occupants,
    })
}

/// A founder's company page: the OPC, its theme package, its tickets and its M8.1 milestones.
pub struct MyCompany {
    pub opc: Opc,
    pub package: Option<opchub_store::registry::ThemePackage>,
    pub tickets: Vec<Ticket>,
    pub milestones: Vec<opchub_store::records::MilestoneRow>,
}

/// `None` when the founder has not registered a company yet.
pub async fn my_company(app: &App, p: &Principal) -> AppResult<Option<MyCompany>> {
    let Some(opc) = app.store.opc_of_founder(&p.user.id).await? else {
        return Ok(None);
    };
    let package = app
        .store
        .theme_packages()
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|t| t.code == opc.theme_package);
    let tickets = app.store.tickets_of_opc(&opc.id).await.unwrap_or_default();
    let milestones = app.store.milestones(Some(&opc.id)).await.unwrap_or_default();
    Ok(Some(MyCompany {
        opc,
        package,
        tickets,
        milestones,
    }))
}

/// Whether the caller may still write in a ticket's thread (its founder or a specialist, until closed).
pub fn may_write_ticket(p: &Principal, t: &Ticket) -> bool {
    matches!(p.role(), Role::OpcFounder | Role::Specialist) && t.status != "closed"
}

/// A specialist's queue (M4.3): open tickets, and the OPCs assigned to them.
pub async fn specialist_queue(app: &App, p: &Principal) -> AppResult<(Vec<Ticket>, Vec<Opc>)> {
    let queue = app.store.ticket_queue(&p.user.id).await.unwrap_or_default();
    let mine = app.store.opcs(None, None, Some(&p.user.id)).await.unwrap_or_default();
    Ok((queue, mine))
}

/// The communities an administrator manages (all for the platform operator, else their own) and,
/// for the platform operator, the community operators a new community may be given to.
pub async fn managed_communities(app: &App, p: &Principal) -> AppResult<(Vec<Community>, Vec<User>)> {
    let platform = p.role() == Role::PlatformOperator;
    let mine = (!platform).then_some(p.user.id.as_str());
    let list = app.store.communities(None, mine).await.unwrap_or_default();
    let operators = if platform {
        app.store.users(Some(Role::CommunityOperator)).await.unwrap_or_default()
    } else {
        vec![]
    };
    Ok((list, operators))
}

/// The OPCs of a zone (or all) with the specialists they may be assigned to (M4.3).
pub async fn opcs_and_specialists(app: &App, zone: Option<Zone>) -> AppResult<(Vec<Opc>, Vec<User>)> {
    let opcs = app.store.opcs(None, zone, None).await.unwrap_or_default();
    let specialists = app.store.users(Some(Role::Specialist)).await.unwrap_or_default();
    Ok((opcs, specialists))
}

/// Whether the database answers (`/readyz`); a failure is logged.
pub async fn ready(app: &App) -> bool {
    match app.store.ping().await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            false
        }
    }
}

/// One OPC as the committee and its specialist see it (issue 21 item 6): the registry record,
/// this month's usage and what it served, what it was granted, the integrity findings that
/// name it, its applications and its service tickets.
#[derive(serde::Serialize)]
pub struct OpcDetail {
    pub opc: Opc,
    pub period: String,
    pub usage: Vec<opchub_store::ledger::UsageTotal>,
    pub served: Vec<opchub_store::ledger::UsageTotal>,
    pub grants: Vec<opchub_store::grants::GrantView>,
    pub findings: Vec<opchub_store::integrity::Finding>,
    pub applications: Vec<opchub_store::applications::Application>,
    pub tickets: Vec<Ticket>,
}

/// The committee reads any OPC; a specialist the OPCs assigned to it (others: `not_found`).
pub async fn opc_detail_for(app: &App, p: &Principal, id: &str) -> AppResult<OpcDetail> {
    let opc = app.store.opc(id).await?;
    let allowed = match p.role() {
        Role::Committee => true,
        Role::Specialist => opc.specialist_user_id.as_deref() == Some(p.user.id.as_str()),
        _ => false,
    };
    if !allowed {
        return Err(AppError::not_found());
    }
    let period = opchub_ledger::event::period_of(opchub_store::now_ms());
    let usage = app.store.usage_totals(&opc.id, false, &period).await?;
    let served = app.store.usage_totals(&opc.id, true, &period).await?;
    let grants = app.store.settlement_grants_of(&opc.id).await?;
    let findings = app
        .store
        .integrity_findings(None)
        .await?
        .into_iter()
        .filter(|f| f.parties.iter().any(|x| x == &opc.id))
        .collect();
    let filter = opchub_store::applications::AppFilter {
        applicant: Some(opc.founder_user_id.clone()),
        limit: 200,
        ..Default::default()
    };
    let applications = app.store.applications(&filter).await?;
    let tickets = app.store.tickets_of_opc(&opc.id).await?;
    Ok(OpcDetail {
        opc,
        period,
        usage,
        served,
        grants,
        findings,
        applications,
        tickets,
    })
}
