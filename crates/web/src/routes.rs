//! The route table: every route of the platform, with who may call it. The router is built
//! from this table only, so a route cannot exist without an access rule; the route × role
//! test walks the same table and fails for any route it has no expectation for.

use crate::auth::{enforce, Access, Surface};
use crate::{api, ops, pages, AppState};
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use opchub_domain::Role;
use Role::*;

const FOUNDER: &[Role] = &[OpcFounder];
const SPECIALIST: &[Role] = &[Specialist];
const PLATFORM: &[Role] = &[PlatformOperator];
const COMMITTEE: &[Role] = &[Committee];
const AUDIT: &[Role] = &[Committee, Auditor];
const COMMUNITY_ADMIN: &[Role] = &[CommunityOperator, PlatformOperator];
const OPC_VIEWERS: &[Role] = &[OpcFounder, Specialist, CommunityOperator, PlatformOperator, Committee, Auditor];
const OPC_LISTERS: &[Role] = &[Specialist, CommunityOperator, PlatformOperator, Committee, Auditor];
const USER_LISTERS: &[Role] = &[PlatformOperator, Committee, Auditor];
const TICKET_USERS: &[Role] = &[OpcFounder, Specialist];
const TICKET_READERS: &[Role] = &[OpcFounder, Specialist, Committee, Auditor];
const FOUNDER_OR_ANON: Access = Access::AnonymousOr(FOUNDER);
const LEDGER_STAFF: &[Role] = &[PlatformOperator, Committee, Auditor];
/// Owners of ledger sources (the key decides; the owner's role must be one of these).
const SOURCE_OWNERS: &[Role] = &[CommunityOperator, PlatformOperator];
/// Who is paid without applying (免申即享) and confirms its settlement line: OPCs, community
/// operators, district enterprises.
const BENEFICIARIES: &[Role] = &[OpcFounder, CommunityOperator, Enterprise];
/// Who reads settlement batches: the committee decides, finance pays, audit checks.
const SETTLE_READERS: &[Role] = &[Committee, Finance, Auditor];
/// Demand board (M2.4): companies, OPCs, both parties, and who reads cooperations.
const COMPANY: &[Role] = &[Enterprise];
const PARTIES: &[Role] = &[Enterprise, OpcFounder];
const DEMAND_READERS: &[Role] = &[Enterprise, OpcFounder, Committee, Auditor, PlatformOperator];
const RECOMMENDERS: &[Role] = &[Enterprise, Committee, Auditor, PlatformOperator];
const REVIEWERS: &[Role] = &[Committee, Auditor];
/// Applications (issue 8): who applies (the clause's beneficiary role is checked per clause),
/// who reviews (F1: committee, district agencies, finance bureau; audit reads).
const APPLICANTS: &[Role] = &[OpcFounder, CommunityOperator, Enterprise];
const APP_READERS: &[Role] = &[OpcFounder, CommunityOperator, Enterprise, Committee, Agency, Finance, Auditor];
const APP_REVIEWERS: &[Role] = &[Committee, Agency, Finance];
const FINANCE: &[Role] = &[Finance];
const FUNDS_READERS: &[Role] = &[Committee, Finance, Auditor];
/// Talent housing (M7): the committee and the human-resources agency manage it.
const HOUSING_STAFF: &[Role] = &[Committee, Agency];
const HOUSING_READERS: &[Role] = &[Committee, Agency, Auditor];
const HOUSING_VIEWERS: &[Role] = &[OpcFounder, Committee, Agency, Auditor];
const MILESTONE_READERS: &[Role] = &[OpcFounder, Committee, Agency, Auditor];
/// A skill is delisted by its publisher or by the platform operator (M2.3).
const SKILL_DELISTERS: &[Role] = &[OpcFounder, PlatformOperator];
/// Who reads a dataset's downloads: its operator, the downloading OPC, staff (M2.2).
const DATASET_READERS: &[Role] = &[OpcFounder, CommunityOperator, PlatformOperator, Committee, Auditor];
/// The datasets page: OPCs download, community operators publish (M2.2).
const DATASET_USERS: &[Role] = &[OpcFounder, CommunityOperator];

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub surface: Surface,
    /// Page forms with files (`multipart/form-data`): the largest body accepted. Other
    /// routes take the configured body limit and, on pages, URL-encoded forms only.
    pub upload: Option<usize>,
    handler: MethodRouter<AppState>,
}

impl Route {
    /// A page form that may carry files, with bodies up to `limit` bytes.
    fn upload(mut self, limit: usize) -> Route {
        self.upload = Some(limit);
        self.handler = self.handler.layer(DefaultBodyLimit::max(limit));
        self
    }
}

fn r(method: Method, path: &'static str, access: Access, surface: Surface, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        access,
        surface,
        upload: None,
        handler,
    }
}

/// Every route. Keep grouped by surface; the order does not matter.
pub fn table() -> Vec<Route> {
    use Access::{Authenticated as Auth, Public, Roles};
    use Surface::{Api, OpenAi, Page};
    let (g, p) = (Method::GET, Method::POST);
    vec![
        // operations
        r(g.clone(), "/healthz", Public, Api, get(ops::healthz)),
        r(g.clone(), "/readyz", Public, Api, get(ops::readyz)),
        r(g.clone(), "/metrics", Public, Api, get(ops::metrics)),
        r(g.clone(), "/api/openapi.json", Public, Api, get(crate::openapi::serve)),
        // JSON API
        r(g.clone(), "/api/v1/stats", Public, Api, get(api::stats)),
        r(g.clone(), "/api/v1/zones", Public, Api, get(api::zones)),
        r(g.clone(), "/api/v1/theme-packages", Public, Api, get(api::theme_packages)),
        r(g.clone(), "/api/v1/communities", Public, Api, get(api::communities)),
        r(
            p.clone(),
            "/api/v1/communities",
            Roles(COMMUNITY_ADMIN),
            Api,
            post(api::create_community),
        ),
        r(g.clone(), "/api/v1/communities/{id}", Public, Api, get(api::community)),
        r(
            p.clone(),
            "/api/v1/communities/{id}/workstations",
            Roles(COMMUNITY_ADMIN),
            Api,
            post(api::add_workstations),
        ),
        r(
            Method::PUT,
            "/api/v1/workstations/{id}",
            Roles(COMMUNITY_ADMIN),
            Api,
            put(api::set_workstation),
        ),
        r(
            p.clone(),
            "/api/v1/registrations",
            FOUNDER_OR_ANON,
            Api,
            post(api::create_registration),
        ),
        r(g.clone(), "/api/v1/me", Auth, Api, get(api::me)),
        r(g.clone(), "/api/v1/me/api-keys", Auth, Api, get(api::list_keys)),
        r(p.clone(), "/api/v1/me/api-keys", Auth, Api, post(api::create_key)),
        r(Method::DELETE, "/api/v1/me/api-keys/{id}", Auth, Api, delete(api::revoke_key)),
        r(g.clone(), "/api/v1/my/opc", Roles(FOUNDER), Api, get(api::my_opc)),
        r(g.clone(), "/api/v1/opcs", Roles(OPC_LISTERS), Api, get(api::opcs)),
        r(g.clone(), "/api/v1/opcs/{id}", Roles(OPC_VIEWERS), Api, get(api::opc)),
        r(
            Method::PUT,
            "/api/v1/opcs/{id}/specialist",
            Roles(COMMITTEE),
            Api,
            put(api::assign_specialist),
        ),
        r(g.clone(), "/api/v1/enterprises", Auth, Api, get(api::enterprises)),
        r(p.clone(), "/api/v1/enterprises", Roles(PLATFORM), Api, post(api::create_enterprise)),
        r(g.clone(), "/api/v1/users", Roles(USER_LISTERS), Api, get(api::users)),
        r(p.clone(), "/api/v1/users", Roles(PLATFORM), Api, post(api::create_user)),
        r(
            Method::PUT,
            "/api/v1/users/{id}/disabled",
            Roles(PLATFORM),
            Api,
            put(api::set_user_disabled),
        ),
        r(g.clone(), "/api/v1/tickets", Roles(TICKET_USERS), Api, get(api::tickets)),
        r(p.clone(), "/api/v1/tickets", Roles(FOUNDER), Api, post(api::create_ticket)),
        r(g.clone(), "/api/v1/tickets/{id}", Roles(TICKET_READERS), Api, get(api::ticket)),
        r(
            p.clone(),
            "/api/v1/tickets/{id}/replies",
            Roles(TICKET_USERS),
            Api,
            post(api::reply_ticket),
        ),
        r(
            p.clone(),
            "/api/v1/tickets/{id}/close",
            Roles(TICKET_USERS),
            Api,
            post(api::close_ticket),
        ),
        r(g.clone(), "/api/v1/audit", Roles(AUDIT), Api, get(api::audit)),
        // usage ledger
        r(
            p.clone(),
            "/api/v1/ledger/events",
            Roles(SOURCE_OWNERS),
            Api,
            post(api::ledger::ingest).layer(DefaultBodyLimit::max(api::ledger::MAX_BATCH_BYTES)),
        ),
        r(
            g.clone(),
            "/api/v1/ledger/events/{leaf_index}",
            Roles(LEDGER_STAFF),
            Api,
            get(api::ledger::event),
        ),
        r(
            p.clone(),
            "/api/v1/ledger/corrections",
            Roles(COMMITTEE),
            Api,
            post(api::ledger::correct),
        ),
        r(
            g.clone(),
            "/api/v1/ledger/sources",
            Roles(LEDGER_STAFF),
            Api,
            get(api::ledger::sources),
        ),
        r(
            p.clone(),
            "/api/v1/ledger/sources",
            Roles(PLATFORM),
            Api,
            post(api::ledger::create_source),
        ),
        r(g.clone(), "/api/v1/ledger/checkpoints", Public, Api, get(api::ledger::checkpoints)),
        r(
            g.clone(),
            "/api/v1/ledger/checkpoint",
            Public,
            Api,
            get(api::ledger::latest_checkpoint),
        ),
        r(
            g.clone(),
            "/.well-known/opchub-ledger-key",
            Public,
            Api,
            get(api::ledger::public_key),
        ),
        r(
            g.clone(),
            "/api/v1/ledger/proofs/inclusion",
            Public,
            Api,
            get(api::ledger::inclusion),
        ),
        r(
            g.clone(),
            "/api/v1/ledger/proofs/consistency",
            Public,
            Api,
            get(api::ledger::consistency),
        ),
        r(
            p.clone(),
            "/api/v1/ledger/periods/{period}/close",
            Roles(COMMITTEE),
            Api,
            post(api::ledger::close_period),
        ),
        // factor gateway (M2.2): OpenAI-compatible endpoints, then its management API
        r(g.clone(), "/v1/models", Roles(FOUNDER), OpenAi, get(api::gateway::models)),
        r(
            p.clone(),
            "/v1/chat/completions",
            Roles(FOUNDER),
            OpenAi,
            post(api::gateway::chat_completions).layer(DefaultBodyLimit::disable()),
        ),
        r(
            p.clone(),
            "/v1/embeddings",
            Roles(FOUNDER),
            OpenAi,
            post(api::gateway::embeddings).layer(DefaultBodyLimit::disable()),
        ),
        r(
            p.clone(),
            "/api/v1/gateway/channels",
            Roles(&[CommunityOperator]),
            Api,
            post(api::gateway::create_channel),
        ),
        r(
            g.clone(),
            "/api/v1/gateway/channels",
            Roles(COMMUNITY_ADMIN),
            Api,
            get(api::gateway::channels),
        ),
        r(
            Method::PUT,
            "/api/v1/gateway/channels/{id}/status",
            Roles(PLATFORM),
            Api,
            put(api::gateway::set_channel_status),
        ),
        r(
            p.clone(),
            "/api/v1/gateway/prices",
            Roles(&[CommunityOperator]),
            Api,
            post(api::gateway::create_prices),
        ),
        r(
            Method::PUT,
            "/api/v1/me/api-keys/{id}/limits",
            Auth,
            Api,
            put(api::gateway::set_key_limits),
        ),
        r(g.clone(), "/api/v1/gateway/requests", Auth, Api, get(api::gateway::requests)),
        // datasets (M2.2): operators publish, OPCs download with their API key, metered by bytes
        r(
            p.clone(),
            "/api/v1/datasets",
            Roles(&[CommunityOperator]),
            Api,
            post(api::datasets::create),
        ),
        r(g.clone(), "/api/v1/datasets", Auth, Api, get(api::datasets::list)),
        r(
            Method::PUT,
            "/api/v1/datasets/{id}/file",
            Roles(&[CommunityOperator]),
            Api,
            put(api::datasets::upload).layer(DefaultBodyLimit::disable()),
        ),
        r(
            Method::PUT,
            "/api/v1/datasets/{id}/status",
            Roles(&[CommunityOperator]),
            Api,
            put(api::datasets::set_status),
        ),
        r(
            g.clone(),
            "/api/v1/datasets/{id}/download",
            Roles(FOUNDER),
            Api,
            get(api::datasets::download),
        ),
        r(
            g.clone(),
            "/api/v1/datasets/{id}/downloads",
            Roles(DATASET_READERS),
            Api,
            get(api::datasets::downloads),
        ),
        r(g.clone(), "/api/v1/policy/headroom", Auth, Api, get(api::policy::headroom)),
        // applications and funds (issue 8)
        r(g.clone(), "/api/v1/application-types", Public, Api, get(api::applications::types)),
        r(
            g.clone(),
            "/api/v1/applications/prefill",
            Roles(APPLICANTS),
            Api,
            get(api::applications::prefill),
        ),
        r(
            g.clone(),
            "/api/v1/applications",
            Roles(APP_READERS),
            Api,
            get(api::applications::list),
        ),
        r(
            p.clone(),
            "/api/v1/applications",
            Roles(APPLICANTS),
            Api,
            post(api::applications::create),
        ),
        r(
            g.clone(),
            "/api/v1/applications/{id}",
            Roles(APP_READERS),
            Api,
            get(api::applications::show),
        ),
        r(
            Method::PUT,
            "/api/v1/applications/{id}",
            Roles(APPLICANTS),
            Api,
            put(api::applications::update),
        ),
        r(
            p.clone(),
            "/api/v1/applications/{id}/files",
            Roles(APPLICANTS),
            Api,
            post(api::applications::upload).layer(DefaultBodyLimit::disable()),
        ),
        r(
            g.clone(),
            "/api/v1/applications/{id}/files/{file_id}",
            Roles(APP_READERS),
            Api,
            get(api::applications::download),
        ),
        r(
            p.clone(),
            "/api/v1/applications/{id}/submit",
            Roles(APPLICANTS),
            Api,
            post(api::applications::submit),
        ),
        r(
            p.clone(),
            "/api/v1/applications/{id}/review",
            Roles(APP_REVIEWERS),
            Api,
            post(api::applications::review),
        ),
        r(
            p.clone(),
            "/api/v1/applications/{id}/recovery",
            Roles(COMMITTEE),
            Api,
            post(api::applications::open_recovery),
        ),
        r(
            g.clone(),
            "/api/v1/recoveries",
            Roles(APP_READERS),
            Api,
            get(api::applications::recoveries),
        ),
        r(
            p.clone(),
            "/api/v1/recoveries/{id}/repay",
            Roles(FINANCE),
            Api,
            post(api::applications::repay),
        ),
        r(
            g.clone(),
            "/api/v1/fund-batches",
            Roles(FUNDS_READERS),
            Api,
            get(api::applications::batches),
        ),
        r(p.clone(), "/api/v1/fund-batches", Roles(FINANCE), Api, post(api::applications::pay)),
        r(
            g.clone(),
            "/api/v1/fund-batches/{id}",
            Roles(FUNDS_READERS),
            Api,
            get(api::applications::batch),
        ),
        r(
            g.clone(),
            "/api/v1/fund-batches/{id}/export",
            Roles(FUNDS_READERS),
            Api,
            get(api::applications::export),
        ),
        r(
            g.clone(),
            "/api/v1/funds/dashboard",
            Roles(FUNDS_READERS),
            Api,
            get(api::applications::dashboard),
        ),
        r(
            g.clone(),
            "/api/v1/funds/dashboard/export",
            Roles(FUNDS_READERS),
            Api,
            get(api::applications::dashboard_export),
        ),
        // records behind M6.3, M7.2, M8.1 (issue 8)
        r(p.clone(), "/api/v1/loans", Roles(FOUNDER), Api, post(api::records::create_loan)),
        r(g.clone(), "/api/v1/loans", Roles(FOUNDER), Api, get(api::records::loans)),
        r(
            p.clone(),
            "/api/v1/loans/{id}/entries",
            Roles(FOUNDER),
            Api,
            post(api::records::add_entry),
        ),
        r(g.clone(), "/api/v1/loans/claims", Roles(FOUNDER), Api, get(api::records::claims)),
        r(
            p.clone(),
            "/api/v1/loans/claims",
            Roles(FOUNDER),
            Api,
            post(api::records::create_claim),
        ),
        r(
            p.clone(),
            "/api/v1/apartments",
            Roles(HOUSING_STAFF),
            Api,
            post(api::records::create_apartment),
        ),
        r(
            g.clone(),
            "/api/v1/apartments",
            Roles(HOUSING_READERS),
            Api,
            get(api::records::apartments),
        ),
        r(
            p.clone(),
            "/api/v1/housing/assignments",
            Roles(HOUSING_STAFF),
            Api,
            post(api::records::assign),
        ),
        r(
            p.clone(),
            "/api/v1/housing/assignments/{id}/move-out",
            Roles(HOUSING_STAFF),
            Api,
            post(api::records::move_out),
        ),
        r(
            g.clone(),
            "/api/v1/housing/assignments/{id}/schedule",
            Roles(HOUSING_VIEWERS),
            Api,
            get(api::records::rent_schedule),
        ),
        r(
            g.clone(),
            "/api/v1/milestones",
            Roles(MILESTONE_READERS),
            Api,
            get(api::records::milestones),
        ),
        // 免申即享 settlement (issue 6)
        r(g.clone(), "/api/v1/policy/clauses", Public, Api, get(api::settlement::clauses)),
        r(
            g.clone(),
            "/api/v1/policy/calculator",
            Roles(BENEFICIARIES),
            Api,
            get(api::settlement::calculator),
        ),
        r(
            g.clone(),
            "/api/v1/settlements",
            Roles(SETTLE_READERS),
            Api,
            get(api::settlement::list),
        ),
        r(
            p.clone(),
            "/api/v1/settlements",
            Roles(COMMITTEE),
            Api,
            post(api::settlement::create),
        ),
        r(
            p.clone(),
            "/api/v1/settlements/what-if",
            Roles(COMMITTEE),
            Api,
            post(api::settlement::what_if),
        ),
        r(
            g.clone(),
            "/api/v1/settlements/{id}",
            Roles(SETTLE_READERS),
            Api,
            get(api::settlement::show),
        ),
        r(
            p.clone(),
            "/api/v1/settlements/{id}/approve",
            Roles(COMMITTEE),
            Api,
            post(api::settlement::approve),
        ),
        r(
            g.clone(),
            "/api/v1/settlements/{id}/export",
            Roles(SETTLE_READERS),
            Api,
            get(api::settlement::export),
        ),
        r(
            g.clone(),
            "/api/v1/my/settlements",
            Roles(BENEFICIARIES),
            Api,
            get(api::settlement::mine),
        ),
        r(
            p.clone(),
            "/api/v1/my/settlements/confirm",
            Roles(BENEFICIARIES),
            Api,
            post(api::settlement::confirm),
        ),
        r(
            g.clone(),
            "/api/v1/exclusions",
            Roles(AUDIT),
            Api,
            get(api::settlement::exclusion_lists),
        ),
        r(
            p.clone(),
            "/api/v1/exclusions/{kind}",
            Roles(COMMITTEE),
            Api,
            post(api::settlement::import),
        ),
        r(
            Method::PUT,
            "/api/v1/parties/{kind}/{id}/industry-code",
            Roles(&[Committee, PlatformOperator]),
            Api,
            put(api::settlement::set_industry_code),
        ),
        r(
            g.clone(),
            "/api/v1/overlap-grants",
            Roles(AUDIT),
            Api,
            get(api::settlement::overlaps),
        ),
        r(
            p.clone(),
            "/api/v1/overlap-grants",
            Roles(COMMITTEE),
            Api,
            post(api::settlement::add_overlap),
        ),
        r(g.clone(), "/api/v1/ledger/statement", Auth, Api, get(api::ledger::statement)),
        r(
            g.clone(),
            "/api/v1/ledger/statement.csv",
            Auth,
            Api,
            get(api::ledger::statement_csv),
        ),
        r(
            g.clone(),
            "/api/v1/ledger/statement.xlsx",
            Auth,
            Api,
            get(api::ledger::statement_xlsx),
        ),
        // demand board (M2.4): demands, matching, proposals, cooperations, notifications
        r(g.clone(), "/api/v1/demands", Public, Api, get(api::demands::search)),
        r(
            p.clone(),
            "/api/v1/demands",
            Roles(COMPANY),
            Api,
            post(api::demands::create_demand).layer(DefaultBodyLimit::max(api::demands::MAX_FILE_BODY)),
        ),
        r(
            g.clone(),
            "/api/v1/demands/mine",
            Roles(COMPANY),
            Api,
            get(api::demands::my_demands),
        ),
        r(g.clone(), "/api/v1/demands/for-me", Roles(FOUNDER), Api, get(api::demands::for_me)),
        r(g.clone(), "/api/v1/demands/files/{sha256}", Auth, Api, get(api::demands::file)),
        r(g.clone(), "/api/v1/demands/{id}", Public, Api, get(api::demands::demand)),
        r(
            p.clone(),
            "/api/v1/demands/{id}/publish",
            Roles(COMPANY),
            Api,
            post(api::demands::publish),
        ),
        r(
            p.clone(),
            "/api/v1/demands/{id}/cancel",
            Roles(COMPANY),
            Api,
            post(api::demands::cancel),
        ),
        r(
            g.clone(),
            "/api/v1/demands/{id}/recommendations",
            Roles(RECOMMENDERS),
            Api,
            get(api::demands::recommendations),
        ),
        r(
            g.clone(),
            "/api/v1/demands/{id}/proposals",
            Roles(DEMAND_READERS),
            Api,
            get(api::demands::proposals),
        ),
        r(
            p.clone(),
            "/api/v1/demands/{id}/proposals",
            Roles(FOUNDER),
            Api,
            post(api::demands::propose),
        ),
        r(
            g.clone(),
            "/api/v1/demands/proposals/mine",
            Roles(FOUNDER),
            Api,
            get(api::demands::my_proposals),
        ),
        r(
            p.clone(),
            "/api/v1/demands/proposals/{id}/shortlist",
            Roles(COMPANY),
            Api,
            post(api::demands::shortlist),
        ),
        r(
            p.clone(),
            "/api/v1/demands/proposals/{id}/decline",
            Roles(COMPANY),
            Api,
            post(api::demands::decline),
        ),
        r(
            p.clone(),
            "/api/v1/demands/proposals/{id}/accept",
            Roles(COMPANY),
            Api,
            post(api::demands::accept),
        ),
        r(
            g.clone(),
            "/api/v1/demands/proposals/{id}/messages",
            Roles(PARTIES),
            Api,
            get(api::demands::messages),
        ),
        r(
            p.clone(),
            "/api/v1/demands/proposals/{id}/messages",
            Roles(PARTIES),
            Api,
            post(api::demands::post_message),
        ),
        r(
            g.clone(),
            "/api/v1/cooperations",
            Roles(DEMAND_READERS),
            Api,
            get(api::demands::cooperations),
        ),
        r(
            g.clone(),
            "/api/v1/cooperations/summary",
            Roles(COMPANY),
            Api,
            get(api::demands::summary),
        ),
        r(
            g.clone(),
            "/api/v1/cooperations/disputes",
            Roles(REVIEWERS),
            Api,
            get(api::demands::disputes),
        ),
        r(
            p.clone(),
            "/api/v1/cooperations/disputes/{id}/resolve",
            Roles(COMMITTEE),
            Api,
            post(api::demands::resolve),
        ),
        r(
            g.clone(),
            "/api/v1/cooperations/flags",
            Roles(REVIEWERS),
            Api,
            get(api::demands::flags),
        ),
        r(
            g.clone(),
            "/api/v1/cooperations/{id}",
            Roles(DEMAND_READERS),
            Api,
            get(api::demands::cooperation),
        ),
        r(
            p.clone(),
            "/api/v1/cooperations/{id}/payments",
            Roles(COMPANY),
            Api,
            post(api::demands::record_payment).layer(DefaultBodyLimit::max(api::demands::MAX_FILE_BODY)),
        ),
        r(
            p.clone(),
            "/api/v1/cooperations/payments/{id}/confirm",
            Roles(FOUNDER),
            Api,
            post(api::demands::confirm),
        ),
        r(
            p.clone(),
            "/api/v1/cooperations/payments/{id}/dispute",
            Roles(PARTIES),
            Api,
            post(api::demands::dispute),
        ),
        r(
            p.clone(),
            "/api/v1/cooperations/{id}/amendments",
            Roles(COMPANY),
            Api,
            post(api::demands::amend),
        ),
        r(
            p.clone(),
            "/api/v1/cooperations/amendments/{id}/decide",
            Roles(FOUNDER),
            Api,
            post(api::demands::decide),
        ),
        r(
            p.clone(),
            "/api/v1/cooperations/{id}/complete",
            Roles(COMPANY),
            Api,
            post(api::demands::complete),
        ),
        r(
            p.clone(),
            "/api/v1/cooperations/{id}/ratings",
            Roles(PARTIES),
            Api,
            post(api::demands::rate),
        ),
        r(g.clone(), "/api/v1/notifications", Auth, Api, get(api::demands::notifications)),
        r(p.clone(), "/api/v1/notifications/read", Auth, Api, post(api::demands::mark_read)),
        // Skill Store (M2.3): API, the `/mcp` endpoint, pages
        r(g.clone(), "/api/v1/skills", Public, Api, get(api::skills::search)),
        r(
            p.clone(),
            "/api/v1/skills",
            Roles(FOUNDER),
            Api,
            post(api::skills::publish).layer(DefaultBodyLimit::max(api::skills::MAX_PUBLISH_BODY)),
        ),
        r(g.clone(), "/api/v1/skills/{id}", Public, Api, get(api::skills::detail)),
        r(
            p.clone(),
            "/api/v1/skills/{id}/versions",
            Roles(FOUNDER),
            Api,
            post(api::skills::add_version).layer(DefaultBodyLimit::max(api::skills::MAX_PUBLISH_BODY)),
        ),
        r(
            p.clone(),
            "/api/v1/skill-versions/{id}/submit",
            Roles(FOUNDER),
            Api,
            post(api::skills::submit),
        ),
        r(
            g.clone(),
            "/api/v1/skill-reviews",
            Roles(PLATFORM),
            Api,
            get(api::skills::review_queue),
        ),
        r(
            p.clone(),
            "/api/v1/skill-versions/{id}/review",
            Roles(PLATFORM),
            Api,
            post(api::skills::review),
        ),
        r(
            p.clone(),
            "/api/v1/skills/{id}/delist",
            Roles(SKILL_DELISTERS),
            Api,
            post(api::skills::delist),
        ),
        r(
            p.clone(),
            "/api/v1/skills/{id}/refresh",
            Roles(PLATFORM),
            Api,
            post(api::skills::refresh),
        ),
        r(
            Method::PUT,
            "/api/v1/skills/{id}/enabled",
            Roles(FOUNDER),
            Api,
            put(api::skills::set_enabled),
        ),
        r(
            p.clone(),
            "/api/v1/skills/{id}/invoke",
            Roles(FOUNDER),
            Api,
            post(api::skills::invoke),
        ),
        r(
            g.clone(),
            "/api/v1/skills/{id}/package",
            Roles(FOUNDER),
            Api,
            get(api::skills::package),
        ),
        r(
            p.clone(),
            "/api/v1/skills/{id}/ratings",
            Roles(FOUNDER),
            Api,
            post(api::skills::rate),
        ),
        r(
            g.clone(),
            "/api/v1/my/skills",
            Roles(FOUNDER),
            Api,
            get(api::skills::publisher_dashboard),
        ),
        r(
            g.clone(),
            "/api/v1/my/skill-usage",
            Roles(FOUNDER),
            Api,
            get(api::skills::invoker_dashboard),
        ),
        r(p.clone(), "/mcp", Roles(FOUNDER), Api, post(crate::mcp::handle)),
        r(g.clone(), "/mcp", Roles(FOUNDER), Api, get(crate::mcp::handle)),
        r(Method::DELETE, "/mcp", Roles(FOUNDER), Api, delete(crate::mcp::handle)),
        // pages
        r(g.clone(), "/", Public, Page, get(pages::home)),
        r(g.clone(), "/static/site.css", Public, Page, get(pages::css)),
        r(g.clone(), "/lang/{code}", Public, Page, get(pages::set_lang)),
        r(g.clone(), "/login", Public, Page, get(pages::login_form)),
        r(p.clone(), "/login", Public, Page, post(pages::login)),
        r(p.clone(), "/logout", Auth, Page, post(pages::logout)),
        r(g.clone(), "/register", FOUNDER_OR_ANON, Page, get(pages::register_form)),
        r(p.clone(), "/register", FOUNDER_OR_ANON, Page, post(pages::register)),
        r(g.clone(), "/communities", Public, Page, get(pages::communities)),
        r(g.clone(), "/communities/{id}", Public, Page, get(pages::community)),
        r(g.clone(), "/my/company", Roles(FOUNDER), Page, get(pages::my_company)),
        r(p.clone(), "/my/tickets", Roles(FOUNDER), Page, post(pages::create_ticket)),
        r(g.clone(), "/tickets/{id}", Roles(TICKET_READERS), Page, get(pages::ticket)),
        r(
            p.clone(),
            "/tickets/{id}/reply",
            Roles(TICKET_USERS),
            Page,
            post(pages::reply_ticket),
        ),
        r(
            p.clone(),
            "/tickets/{id}/close",
            Roles(TICKET_USERS),
            Page,
            post(pages::close_ticket),
        ),
        r(
            g.clone(),
            "/specialist/queue",
            Roles(SPECIALIST),
            Page,
            get(pages::specialist_queue),
        ),
        // applications and funds (issue 8)
        r(g.clone(), "/applications", Roles(APP_READERS), Page, get(pages::applications::list)),
        r(
            g.clone(),
            "/applications/new",
            Roles(APPLICANTS),
            Page,
            get(pages::applications::new_form),
        ),
        r(
            p.clone(),
            "/applications/new",
            Roles(APPLICANTS),
            Page,
            post(pages::applications::create),
        ),
        r(
            g.clone(),
            "/applications/{id}",
            Roles(APP_READERS),
            Page,
            get(pages::applications::show),
        ),
        r(
            p.clone(),
            "/applications/{id}/submit",
            Roles(APPLICANTS),
            Page,
            post(pages::applications::submit),
        ),
        r(
            p.clone(),
            "/applications/{id}/review",
            Roles(APP_REVIEWERS),
            Page,
            post(pages::applications::review),
        ),
        r(
            p.clone(),
            "/applications/{id}/recovery",
            Roles(COMMITTEE),
            Page,
            post(pages::applications::recovery),
        ),
        r(
            g.clone(),
            "/finance/payments",
            Roles(FUNDS_READERS),
            Page,
            get(pages::applications::payments),
        ),
        r(p.clone(), "/finance/payments", Roles(FINANCE), Page, post(pages::applications::pay)),
        r(
            g.clone(),
            "/committee/funds",
            Roles(FUNDS_READERS),
            Page,
            get(pages::applications::dashboard),
        ),
        r(g.clone(), "/my/records", Roles(FOUNDER), Page, get(pages::records::mine)),
        r(p.clone(), "/my/records/loans", Roles(FOUNDER), Page, post(pages::records::add_loan)),
        r(
            p.clone(),
            "/my/records/loans/{id}/entries",
            Roles(FOUNDER),
            Page,
            post(pages::records::add_entry),
        ),
        r(p.clone(), "/my/records/claims", Roles(FOUNDER), Page, post(pages::records::claim)),
        r(g.clone(), "/housing", Roles(HOUSING_READERS), Page, get(pages::records::housing)),
        r(
            p.clone(),
            "/housing/apartments",
            Roles(HOUSING_STAFF),
            Page,
            post(pages::records::add_apartment),
        ),
        r(
            p.clone(),
            "/housing/assignments",
            Roles(HOUSING_STAFF),
            Page,
            post(pages::records::assign),
        ),
        r(
            p.clone(),
            "/housing/assignments/{id}/move-out",
            Roles(HOUSING_STAFF),
            Page,
            post(pages::records::move_out),
        ),
        r(
            g.clone(),
            "/committee/overlaps",
            Roles(SETTLE_READERS),
            Page,
            get(pages::settlement::overlaps),
        ),
        r(
            p.clone(),
            "/committee/overlaps",
            Roles(COMMITTEE),
            Page,
            post(pages::settlement::add_overlap),
        ),
        r(g.clone(), "/policy", Public, Page, get(pages::settlement::policy_browser)),
        r(
            g.clone(),
            "/policy/calculator",
            Roles(BENEFICIARIES),
            Page,
            get(pages::settlement::calculator),
        ),
        r(
            g.clone(),
            "/my/settlements",
            Roles(BENEFICIARIES),
            Page,
            get(pages::settlement::mine),
        ),
        r(
            p.clone(),
            "/my/settlements/confirm",
            Roles(BENEFICIARIES),
            Page,
            post(pages::settlement::confirm),
        ),
        r(
            g.clone(),
            "/committee/settlements",
            Roles(SETTLE_READERS),
            Page,
            get(pages::settlement::batches),
        ),
        r(
            p.clone(),
            "/committee/settlements",
            Roles(COMMITTEE),
            Page,
            post(pages::settlement::create),
        ),
        r(
            p.clone(),
            "/committee/settlements/what-if",
            Roles(COMMITTEE),
            Page,
            post(pages::settlement::what_if),
        ),
        r(
            p.clone(),
            "/committee/exclusions",
            Roles(COMMITTEE),
            Page,
            post(pages::settlement::import),
        ),
        r(
            g.clone(),
            "/committee/settlements/{id}",
            Roles(SETTLE_READERS),
            Page,
            get(pages::settlement::batch),
        ),
        r(
            p.clone(),
            "/committee/settlements/{id}/approve",
            Roles(COMMITTEE),
            Page,
            post(pages::settlement::approve),
        ),
        r(g.clone(), "/my/keys", Auth, Page, get(pages::keys)),
        r(p.clone(), "/my/keys", Auth, Page, post(pages::create_key)),
        r(p.clone(), "/my/keys/{id}/revoke", Auth, Page, post(pages::revoke_key)),
        r(g.clone(), "/admin/users", Roles(PLATFORM), Page, get(pages::admin_users)),
        r(p.clone(), "/admin/users", Roles(PLATFORM), Page, post(pages::admin_create_user)),
        r(
            g.clone(),
            "/admin/communities",
            Roles(COMMUNITY_ADMIN),
            Page,
            get(pages::admin_communities),
        ),
        r(
            p.clone(),
            "/admin/communities",
            Roles(COMMUNITY_ADMIN),
            Page,
            post(pages::admin_create_community),
        ),
        r(
            p.clone(),
            "/admin/workstations/{id}",
            Roles(COMMUNITY_ADMIN),
            Page,
            post(pages::admin_set_workstation),
        ),
        r(g.clone(), "/admin/opcs", Roles(COMMITTEE), Page, get(pages::admin_opcs)),
        r(
            p.clone(),
            "/admin/opcs/{id}/specialist",
            Roles(COMMITTEE),
            Page,
            post(pages::admin_assign_specialist),
        ),
        r(g.clone(), "/audit", Roles(AUDIT), Page, get(pages::audit)),
        r(g.clone(), "/gateway", Roles(FOUNDER), Page, get(pages::gateway::opc)),
        r(
            p.clone(),
            "/gateway/keys/{id}/limits",
            Roles(FOUNDER),
            Page,
            post(pages::gateway::set_limits),
        ),
        r(
            g.clone(),
            "/gateway/channels",
            Roles(COMMUNITY_ADMIN),
            Page,
            get(pages::gateway::channels),
        ),
        r(
            p.clone(),
            "/gateway/channels",
            Roles(&[CommunityOperator]),
            Page,
            post(pages::gateway::create_channel),
        ),
        r(
            p.clone(),
            "/gateway/channels/{id}/status",
            Roles(PLATFORM),
            Page,
            post(pages::gateway::set_channel_status),
        ),
        r(
            p.clone(),
            "/gateway/prices",
            Roles(&[CommunityOperator]),
            Page,
            post(pages::gateway::create_prices),
        ),
        // compute and data (M2.2)
        r(
            g.clone(),
            "/gateway/datasets",
            Roles(DATASET_USERS),
            Page,
            get(pages::datasets::show),
        ),
        r(
            p.clone(),
            "/gateway/datasets",
            Roles(&[CommunityOperator]),
            Page,
            post(pages::datasets::create_dataset),
        )
        .upload(pages::datasets::PAGE_DATASET_BODY),
        r(
            p.clone(),
            "/gateway/items",
            Roles(&[CommunityOperator]),
            Page,
            post(pages::datasets::create_items),
        ),
        // demand board pages (M2.4)
        r(g.clone(), "/demands", Public, Page, get(pages::demands::browse)),
        r(p.clone(), "/demands", Roles(COMPANY), Page, post(pages::demands::create_demand)).upload(crate::upload::PAGE_UPLOAD_BODY),
        r(g.clone(), "/demands/new", Roles(COMPANY), Page, get(pages::demands::new_demand)),
        r(g.clone(), "/demands/mine", Roles(COMPANY), Page, get(pages::demands::mine)),
        r(g.clone(), "/demands/{id}", Public, Page, get(pages::demands::show)),
        r(
            p.clone(),
            "/demands/{id}/publish",
            Roles(COMPANY),
            Page,
            post(pages::demands::publish),
        ),
        r(
            p.clone(),
            "/demands/{id}/cancel",
            Roles(COMPANY),
            Page,
            post(pages::demands::cancel),
        ),
        r(
            p.clone(),
            "/demands/{id}/proposals",
            Roles(FOUNDER),
            Page,
            post(pages::demands::propose),
        ),
        r(
            p.clone(),
            "/demands/proposals/{id}",
            Roles(COMPANY),
            Page,
            post(pages::demands::proposal_action),
        ),
        r(
            g.clone(),
            "/demands/proposals/{id}",
            Roles(PARTIES),
            Page,
            get(pages::demands::thread),
        ),
        r(
            p.clone(),
            "/demands/proposals/{id}/messages",
            Roles(PARTIES),
            Page,
            post(pages::demands::post_message),
        ),
        r(
            g.clone(),
            "/cooperations",
            Roles(DEMAND_READERS),
            Page,
            get(pages::demands::cooperations),
        ),
        r(
            g.clone(),
            "/cooperations/review",
            Roles(REVIEWERS),
            Page,
            get(pages::demands::review),
        ),
        r(
            p.clone(),
            "/cooperations/disputes/{id}/resolve",
            Roles(COMMITTEE),
            Page,
            post(pages::demands::resolve),
        ),
        r(
            g.clone(),
            "/cooperations/{id}",
            Roles(DEMAND_READERS),
            Page,
            get(pages::demands::cooperation),
        ),
        r(
            p.clone(),
            "/cooperations/{id}",
            Roles(PARTIES),
            Page,
            post(pages::demands::coop_action),
        ),
        r(
            p.clone(),
            "/cooperations/{id}/payments",
            Roles(COMPANY),
            Page,
            post(pages::demands::record_payment),
        ),
        r(
            p.clone(),
            "/cooperations/payments/{id}",
            Roles(PARTIES),
            Page,
            post(pages::demands::payment_action),
        ),
        r(g.clone(), "/notifications", Auth, Page, get(pages::demands::notifications)),
        r(p.clone(), "/notifications/read", Auth, Page, post(pages::demands::mark_read)),
        r(g.clone(), "/skills", Public, Page, get(pages::skills::store)),
        r(g.clone(), "/skills/{id}", Public, Page, get(pages::skills::detail)),
        r(
            p.clone(),
            "/skills/{id}/enabled",
            Roles(FOUNDER),
            Page,
            post(pages::skills::set_enabled),
        ),
        r(p.clone(), "/skills/{id}/rate", Roles(FOUNDER), Page, post(pages::skills::rate)),
        r(g.clone(), "/my/skills", Roles(FOUNDER), Page, get(pages::skills::mine)),
        r(p.clone(), "/my/skills", Roles(FOUNDER), Page, post(pages::skills::publish)).upload(pages::skills::PAGE_PUBLISH_BODY),
        r(
            p.clone(),
            "/my/skills/versions/{id}/submit",
            Roles(FOUNDER),
            Page,
            post(pages::skills::submit),
        ),
        r(g.clone(), "/my/skills/usage", Roles(FOUNDER), Page, get(pages::skills::usage)),
        r(g.clone(), "/admin/skills", Roles(PLATFORM), Page, get(pages::skills::review_queue)),
        r(
            p.clone(),
            "/admin/skills/versions/{id}/review",
            Roles(PLATFORM),
            Page,
            post(pages::skills::review),
        ),
        r(
            p.clone(),
            "/admin/skills/{id}/refresh",
            Roles(PLATFORM),
            Page,
            post(pages::skills::refresh),
        ),
        r(
            p.clone(),
            "/skills/{id}/delist",
            Roles(SKILL_DELISTERS),
            Page,
            post(pages::skills::delist),
        ),
        r(g.clone(), "/ledger/statement", Auth, Page, get(pages::ledger::statement)),
        r(g.clone(), "/ledger/checkpoints", Public, Page, get(pages::ledger::checkpoints)),
        r(g, "/ledger/proof", Public, Page, get(pages::ledger::proof)),
    ]
}

/// Method and path of every route, with its rule (for tests and documentation).
pub fn rules() -> Vec<(Method, &'static str, Access, Surface)> {
    table().into_iter().map(|r| (r.method, r.path, r.access, r.surface)).collect()
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in table() {
        let layer = axum::middleware::from_fn_with_state((state.clone(), route.access, route.surface, route.upload), enforce);
        router = router.route(route.path, route.handler.layer(layer));
    }
    router.fallback(pages::not_found).with_state(state)
}
