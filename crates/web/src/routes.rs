//! The route table: every route of the platform, with who may call it. The router is built
//! from this table only, so a route cannot exist without an access rule; the route × role
//! test walks the same table and fails for any route it has no expectation for.

use crate::auth::{enforce, Access, Surface};
use crate::{api, ops, pages, AppState};
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};
use axum::Router;
use opchub_domain::Role;
use Role::*;

const FOUNDER: &[Role] = &[OpcFounder];
const SPECIALIST: &[Role] = &[Specialist];
const PLATFORM: &[Role] = &[PlatformOperator];
const COMMITTEE: &[Role] = &[Committee];
const AUDIT: &[Role] = &[Committee, Auditor];
const COMMUNITY_ADMIN: &[Role] = &[CommunityOperator, PlatformOperator];
/// The reference price list bounds operators' list prices (M2.2): they, the platform operator
/// who keeps it, the committee and the auditor read it.
const REFERENCE_READERS: &[Role] = &[CommunityOperator, PlatformOperator, Committee, Auditor];
const OPC_VIEWERS: &[Role] = &[OpcFounder, Specialist, CommunityOperator, PlatformOperator, Committee, Auditor];
const OPC_DETAIL_READERS: &[Role] = &[Specialist, Committee];
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
/// Who records a party's people (issue 18 item 1): its owner, the committee, the platform operator.
const PERSON_KEEPERS: &[Role] = &[OpcFounder, CommunityOperator, Enterprise, Committee, PlatformOperator];
const PERSON_READERS: &[Role] = &[OpcFounder, CommunityOperator, Enterprise, Committee, PlatformOperator, Auditor];
/// Who reads settlement batches: the committee decides, finance pays, audit checks.
const STATEMENT_READERS: &[Role] = &[OpcFounder, CommunityOperator, Enterprise, Committee, Finance, Auditor];
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
/// Monthly bills (issue 19): OPCs pay them (and, as publishers, are paid), community operators
/// are paid; the committee and the auditor read every bill.
const BILL_READERS: &[Role] = &[OpcFounder, CommunityOperator, Committee, Auditor];
const BILL_PARTIES: &[Role] = &[OpcFounder, CommunityOperator];

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

    /// A body limit other than the configured one (large uploads, ledger batches).
    fn limit(mut self, limit: DefaultBodyLimit) -> Route {
        self.handler = self.handler.layer(limit);
        self
    }
}

fn route(method: Method, path: &'static str, access: Access, surface: Surface, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        access,
        surface,
        upload: None,
        handler,
    }
}

fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, access: Access, surface: Surface, h: H) -> Route {
    route(Method::GET, path, access, surface, routing::get(h))
}

fn post<H: Handler<T, AppState>, T: 'static>(path: &'static str, access: Access, surface: Surface, h: H) -> Route {
    route(Method::POST, path, access, surface, routing::post(h))
}

fn put<H: Handler<T, AppState>, T: 'static>(path: &'static str, access: Access, surface: Surface, h: H) -> Route {
    route(Method::PUT, path, access, surface, routing::put(h))
}

fn delete<H: Handler<T, AppState>, T: 'static>(path: &'static str, access: Access, surface: Surface, h: H) -> Route {
    route(Method::DELETE, path, access, surface, routing::delete(h))
}

/// Every route: one list assembled from one function per feature. Each route states its
/// method once (the helper it is built with) and its access rule beside it.
pub fn table() -> Vec<Route> {
    [
        ops(),
        site(),
        registry(),
        accounts(),
        audit(),
        ledger(),
        settlement(),
        party_facts(),
        integrity(),
        gateway(),
        datasets(),
        demands(),
        skills(),
        applications(),
        records(),
        bills(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Operations: health, readiness, metrics and the OpenAPI document.
fn ops() -> Vec<Route> {
    use Access::Public;
    use Surface::Api;
    vec![
        get("/healthz", Public, Api, ops::healthz),
        get("/readyz", Public, Api, ops::readyz),
        get("/metrics", Access::OwnToken, Api, ops::metrics),
        get("/api/openapi.json", Public, Api, crate::openapi::serve),
        get("/api/reference", Public, Surface::Page, crate::openapi::reference),
    ]
}

/// The site itself: home page, style sheet, language switch.
fn site() -> Vec<Route> {
    use Access::Public;
    use Surface::Page;
    vec![
        get("/", Public, Page, pages::home),
        get("/static/site.css", Public, Page, pages::css),
        get("/static/evidence.js", Public, Page, pages::evidence_js),
        // the gateway console's playground (M2.2)
        get("/static/playground.js", Public, Page, pages::gateway::playground_js),
        get("/lang/{code}", Public, Page, pages::set_lang),
        get("/workbench", Access::Authenticated, Page, pages::workbench::workbench),
    ]
}

/// The registry (M1, M4): communities and workstations, the registration wizard, OPCs and
/// their specialists, enterprises, service tickets (M4.3).
fn registry() -> Vec<Route> {
    use Access::{Authenticated as Auth, Public, Roles};
    use Surface::{Api, Page};
    vec![
        get("/api/v1/stats", Public, Api, api::stats),
        get("/api/v1/zones", Public, Api, api::zones),
        get("/api/v1/theme-packages", Public, Api, api::theme_packages),
        get("/api/v1/communities", Public, Api, api::communities),
        post("/api/v1/communities", Roles(COMMUNITY_ADMIN), Api, api::create_community),
        get("/api/v1/communities/{id}", Public, Api, api::community),
        post(
            "/api/v1/communities/{id}/workstations",
            Roles(COMMUNITY_ADMIN),
            Api,
            api::add_workstations,
        ),
        put("/api/v1/workstations/{id}", Roles(COMMUNITY_ADMIN), Api, api::set_workstation),
        post("/api/v1/registrations", FOUNDER_OR_ANON, Api, api::create_registration),
        get("/api/v1/my/opc", Roles(FOUNDER), Api, api::my_opc),
        get("/api/v1/opcs", Roles(OPC_LISTERS), Api, api::opcs),
        get("/api/v1/opcs/{id}", Roles(OPC_VIEWERS), Api, api::opc),
        put("/api/v1/opcs/{id}/specialist", Roles(COMMITTEE), Api, api::assign_specialist),
        get("/api/v1/enterprises", Auth, Api, api::enterprises),
        post("/api/v1/enterprises", Roles(PLATFORM), Api, api::create_enterprise),
        get("/api/v1/tickets", Roles(TICKET_USERS), Api, api::tickets),
        post("/api/v1/tickets", Roles(FOUNDER), Api, api::create_ticket),
        get("/api/v1/tickets/{id}", Roles(TICKET_READERS), Api, api::ticket),
        post("/api/v1/tickets/{id}/replies", Roles(TICKET_USERS), Api, api::reply_ticket),
        post("/api/v1/tickets/{id}/close", Roles(TICKET_USERS), Api, api::close_ticket),
        get("/register", FOUNDER_OR_ANON, Page, pages::register_form),
        post("/register", FOUNDER_OR_ANON, Page, pages::register),
        get("/communities", Public, Page, pages::communities),
        get("/communities/{id}", Public, Page, pages::community),
        get("/my/company", Roles(FOUNDER), Page, pages::my_company),
        post("/my/tickets", Roles(FOUNDER), Page, pages::create_ticket),
        get("/tickets/{id}", Roles(TICKET_READERS), Page, pages::ticket),
        post("/tickets/{id}/reply", Roles(TICKET_USERS), Page, pages::reply_ticket),
        post("/tickets/{id}/close", Roles(TICKET_USERS), Page, pages::close_ticket),
        get("/specialist/queue", Roles(SPECIALIST), Page, pages::specialist_queue),
        get("/admin/communities", Roles(COMMUNITY_ADMIN), Page, pages::admin_communities),
        post("/admin/communities", Roles(COMMUNITY_ADMIN), Page, pages::admin_create_community),
        post(
            "/admin/workstations/{id}",
            Roles(COMMUNITY_ADMIN),
            Page,
            pages::admin_set_workstation,
        ),
        get("/admin/opcs", Roles(COMMITTEE), Page, pages::admin_opcs),
        get("/admin/opcs/{id}", Roles(OPC_DETAIL_READERS), Page, pages::opc_detail),
        post(
            "/admin/opcs/{id}/specialist",
            Roles(COMMITTEE),
            Page,
            pages::admin_assign_specialist,
        ),
    ]
}

/// Accounts: who I am, sign-in and sessions, API keys, users (the platform operator).
fn accounts() -> Vec<Route> {
    use Access::{Authenticated as Auth, Public, Roles};
    use Surface::{Api, Page};
    vec![
        get("/api/v1/me", Auth, Api, api::me),
        get("/api/v1/me/api-keys", Auth, Api, api::list_keys),
        post("/api/v1/me/api-keys", Auth, Api, api::create_key),
        delete("/api/v1/me/api-keys/{id}", Auth, Api, api::revoke_key),
        post("/api/v1/account/password", Auth, Api, api::change_password),
        get("/api/v1/users", Roles(USER_LISTERS), Api, api::users),
        post("/api/v1/users", Roles(PLATFORM), Api, api::create_user),
        put("/api/v1/users/{id}/disabled", Roles(PLATFORM), Api, api::set_user_disabled),
        get("/login", Public, Page, pages::login_form),
        post("/login", Public, Page, pages::login),
        post("/logout", Auth, Page, pages::logout),
        get("/my/keys", Auth, Page, pages::keys),
        post("/my/keys", Auth, Page, pages::create_key),
        post("/my/keys/{id}/revoke", Auth, Page, pages::revoke_key),
        post("/my/password", Auth, Page, pages::change_password),
        get("/admin/users", Roles(PLATFORM), Page, pages::admin_users),
        post("/admin/users", Roles(PLATFORM), Page, pages::admin_create_user),
    ]
}

/// The audit trail.
fn audit() -> Vec<Route> {
    use Access::Roles;
    use Surface::{Api, Page};
    vec![
        get("/api/v1/audit", Roles(AUDIT), Api, api::audit),
        get("/audit", Roles(AUDIT), Page, pages::audit),
    ]
}

/// The usage ledger: ingestion by source keys, corrections, checkpoints and proofs, statements.
fn ledger() -> Vec<Route> {
    use Access::{Authenticated as Auth, LedgerSource, Public, Roles};
    use Surface::{Api, Page};
    vec![
        post(api::ledger::INGEST_PATH, LedgerSource(SOURCE_OWNERS), Api, api::ledger::ingest)
            .limit(DefaultBodyLimit::max(api::ledger::MAX_BATCH_BYTES)),
        get("/api/v1/ledger/events/{leaf_index}", Roles(LEDGER_STAFF), Api, api::ledger::event),
        post("/api/v1/ledger/corrections", Roles(COMMITTEE), Api, api::ledger::correct),
        get("/api/v1/ledger/sources", Roles(LEDGER_STAFF), Api, api::ledger::sources),
        post("/api/v1/ledger/sources", Roles(PLATFORM), Api, api::ledger::create_source),
        get("/api/v1/ledger/checkpoints", Public, Api, api::ledger::checkpoints),
        get("/api/v1/ledger/checkpoint", Public, Api, api::ledger::latest_checkpoint),
        get("/.well-known/opchub-ledger-key", Public, Api, api::ledger::public_key),
        get("/api/v1/ledger/proofs/inclusion", Public, Api, api::ledger::inclusion),
        get("/api/v1/ledger/proofs/consistency", Public, Api, api::ledger::consistency),
        post(
            "/api/v1/ledger/periods/{period}/close",
            Roles(COMMITTEE),
            Api,
            api::ledger::close_period,
        ),
        get("/api/v1/ledger/statement", Auth, Api, api::ledger::statement),
        get("/api/v1/ledger/statement.csv", Auth, Api, api::ledger::statement_csv),
        get("/api/v1/ledger/statement.xlsx", Auth, Api, api::ledger::statement_xlsx),
        get("/ledger/statement", Auth, Page, pages::ledger::statement),
        get("/ledger/checkpoints", Public, Page, pages::ledger::checkpoints),
        get("/ledger/proof", Public, Page, pages::ledger::proof),
    ]
}

/// Measures and settlement (免申即享): clauses, the calculator, batches, exclusions, overlaps.
fn settlement() -> Vec<Route> {
    use Access::{Authenticated as Auth, Public, Roles};
    use Surface::{Api, Page};
    vec![
        get("/api/v1/policy/headroom", Auth, Api, api::policy::headroom),
        // 免申即享 settlement (issue 6)
        get("/api/v1/policy/clauses", Public, Api, api::settlement::clauses),
        get("/api/v1/policy/calculator", Roles(BENEFICIARIES), Api, api::settlement::calculator),
        get("/api/v1/settlements", Roles(SETTLE_READERS), Api, api::settlement::list),
        post("/api/v1/settlements", Roles(COMMITTEE), Api, api::settlement::create),
        post("/api/v1/settlements/what-if", Roles(COMMITTEE), Api, api::settlement::what_if),
        get("/api/v1/settlements/{id}", Roles(SETTLE_READERS), Api, api::settlement::show),
        post("/api/v1/settlements/{id}/approve", Roles(COMMITTEE), Api, api::settlement::approve),
        post("/api/v1/settlements/{id}/pay", Roles(FINANCE), Api, api::settlement::pay),
        get(
            "/api/v1/settlement-recoveries",
            Roles(APP_READERS),
            Api,
            api::settlement::recoveries,
        ),
        post(
            "/api/v1/settlement-recoveries/{id}/repay",
            Roles(FINANCE),
            Api,
            api::settlement::repay,
        ),
        get("/api/v1/my/grants", Roles(BENEFICIARIES), Api, api::settlement::my_grants),
        get(
            "/api/v1/settlements/{id}/export",
            Roles(SETTLE_READERS),
            Api,
            api::settlement::export,
        ),
        get("/api/v1/my/settlements", Roles(BENEFICIARIES), Api, api::settlement::mine),
        post(
            "/api/v1/my/settlements/confirm",
            Roles(BENEFICIARIES),
            Api,
            api::settlement::confirm,
        ),
        get("/api/v1/exclusions", Roles(AUDIT), Api, api::settlement::exclusion_lists),
        post("/api/v1/exclusions/{kind}", Roles(COMMITTEE), Api, api::settlement::import),
        put(
            "/api/v1/parties/{kind}/{id}/industry-code",
            Roles(&[Committee, PlatformOperator]),
            Api,
            api::settlement::set_industry_code,
        ),
        get("/api/v1/overlap-grants", Roles(AUDIT), Api, api::settlement::overlaps),
        post("/api/v1/overlap-grants", Roles(COMMITTEE), Api, api::settlement::add_overlap),
        get("/committee/overlaps", Roles(SETTLE_READERS), Page, pages::settlement::overlaps),
        post("/committee/overlaps", Roles(COMMITTEE), Page, pages::settlement::add_overlap),
        get("/policy", Public, Page, pages::settlement::policy_browser),
        get("/policy/calculator", Roles(BENEFICIARIES), Page, pages::settlement::calculator),
        get("/my/settlements", Roles(BENEFICIARIES), Page, pages::settlement::mine),
        post("/my/settlements/confirm", Roles(BENEFICIARIES), Page, pages::settlement::confirm),
        get(
            "/settlements/{batch}/lines/{clause}/{beneficiary}/statement",
            Roles(STATEMENT_READERS),
            Page,
            pages::settlement::statement,
        ),
        get("/committee/settlements", Roles(SETTLE_READERS), Page, pages::settlement::batches),
        post("/committee/settlements", Roles(COMMITTEE), Page, pages::settlement::create),
        post("/committee/settlements/what-if", Roles(COMMITTEE), Page, pages::settlement::what_if),
        post("/committee/exclusions", Roles(COMMITTEE), Page, pages::settlement::import),
        get("/committee/settlements/{id}", Roles(SETTLE_READERS), Page, pages::settlement::batch),
        post(
            "/committee/settlements/{id}/approve",
            Roles(COMMITTEE),
            Page,
            pages::settlement::approve,
        ),
        post("/committee/settlements/{id}/pay", Roles(FINANCE), Page, pages::settlement::pay),
    ]
}

/// Integrity (issue 18): the committee scans and decides findings, the auditor reads them, a
/// flagged beneficiary reads its own and answers.
fn integrity() -> Vec<Route> {
    use Access::Roles;
    use Surface::{Api, Page};
    const READERS: &[Role] = &[Committee, Auditor, OpcFounder, CommunityOperator, Enterprise];
    vec![
        post("/api/v1/integrity/scan", Roles(COMMITTEE), Api, api::integrity::scan),
        get("/api/v1/integrity/findings", Roles(READERS), Api, api::integrity::findings),
        get("/api/v1/integrity/findings/export", Roles(READERS), Api, api::integrity::export),
        get("/api/v1/integrity/findings/{id}", Roles(READERS), Api, api::integrity::finding),
        post(
            "/api/v1/integrity/findings/{id}/decide",
            Roles(COMMITTEE),
            Api,
            api::integrity::decide,
        ),
        post(
            "/api/v1/integrity/findings/{id}/answer",
            Roles(BENEFICIARIES),
            Api,
            api::integrity::answer,
        ),
        get("/integrity", Roles(READERS), Page, pages::integrity::findings),
        post("/integrity/scan", Roles(COMMITTEE), Page, pages::integrity::scan),
        post("/integrity/{id}/decide", Roles(COMMITTEE), Page, pages::integrity::decide),
        post("/integrity/{id}/answer", Roles(BENEFICIARIES), Page, pages::integrity::answer),
    ]
}

/// Party facts (issue 17): G2 registrations and M2.4's in-district (the committee or the platform
/// operator), agency membership (the platform operator, F1), bank accounts (the beneficiary's owner).
fn party_facts() -> Vec<Route> {
    use Access::Roles;
    use Surface::{Api, Page};
    const FACT_KEEPERS: &[Role] = &[Committee, PlatformOperator];
    vec![
        get(
            "/api/v1/parties/registrations",
            Roles(&[Committee, PlatformOperator, Finance, Auditor]),
            Api,
            api::party_facts::registrations,
        ),
        put(
            "/api/v1/parties/{kind}/{id}/registration",
            Roles(FACT_KEEPERS),
            Api,
            api::party_facts::set_registration,
        ),
        put("/api/v1/users/{id}/agency", Roles(PLATFORM), Api, api::party_facts::set_agency),
        get(
            "/api/v1/my/bank-accounts",
            Roles(BENEFICIARIES),
            Api,
            api::party_facts::my_bank_accounts,
        ),
        put(
            "/api/v1/parties/{kind}/{id}/bank-account",
            Roles(BENEFICIARIES),
            Api,
            api::party_facts::set_bank_account,
        ),
        delete(
            "/api/v1/parties/{kind}/{id}/bank-account",
            Roles(BENEFICIARIES),
            Api,
            api::party_facts::clear_bank_account,
        ),
        get(
            "/api/v1/parties/{kind}/{id}/persons",
            Roles(PERSON_READERS),
            Api,
            api::party_facts::persons,
        ),
        post(
            "/api/v1/parties/{kind}/{id}/persons",
            Roles(PERSON_KEEPERS),
            Api,
            api::party_facts::add_person,
        ),
        delete(
            "/api/v1/parties/{kind}/{id}/persons/{person_id}",
            Roles(PERSON_KEEPERS),
            Api,
            api::party_facts::remove_person,
        ),
        get(
            "/api/v1/parties/{kind}/{id}/address",
            Roles(PERSON_READERS),
            Api,
            api::party_facts::address,
        ),
        put(
            "/api/v1/parties/{kind}/{id}/address",
            Roles(PERSON_KEEPERS),
            Api,
            api::party_facts::set_address,
        ),
        post(
            "/my/address/{kind}/{id}",
            Roles(BENEFICIARIES),
            Page,
            pages::party_facts::set_address,
        ),
        post(
            "/my/persons/{kind}/{id}",
            Roles(BENEFICIARIES),
            Page,
            pages::party_facts::add_person,
        ),
        post(
            "/my/persons/{kind}/{id}/{person_id}/remove",
            Roles(BENEFICIARIES),
            Page,
            pages::party_facts::remove_person,
        ),
        get("/admin/parties", Roles(FACT_KEEPERS), Page, pages::party_facts::registrations),
        post(
            "/admin/parties/{kind}/{id}/registration",
            Roles(FACT_KEEPERS),
            Page,
            pages::party_facts::set_registration,
        ),
        post(
            "/admin/parties/{kind}/{id}/industry-code",
            Roles(FACT_KEEPERS),
            Page,
            pages::party_facts::set_industry_code,
        ),
        post("/admin/users/{id}/agency", Roles(PLATFORM), Page, pages::party_facts::set_agency),
        get("/my/bank-account", Roles(BENEFICIARIES), Page, pages::party_facts::bank_accounts),
        post(
            "/my/bank-account/{kind}/{id}",
            Roles(BENEFICIARIES),
            Page,
            pages::party_facts::set_bank_account,
        ),
        post(
            "/my/bank-account/{kind}/{id}/clear",
            Roles(BENEFICIARIES),
            Page,
            pages::party_facts::clear_bank_account,
        ),
    ]
}

/// The compute gateway (M2.2): the OpenAI-compatible `/v1` routes, channels, prices, key limits.
fn gateway() -> Vec<Route> {
    use Access::{Authenticated as Auth, Roles};
    use Surface::{Api, OpenAi, Page};
    vec![
        // factor gateway (M2.2): OpenAI-compatible endpoints, then its management API
        get("/v1/models", Roles(FOUNDER), OpenAi, api::gateway::models),
        post("/v1/chat/completions", Roles(FOUNDER), OpenAi, api::gateway::chat_completions).limit(DefaultBodyLimit::disable()),
        post("/v1/embeddings", Roles(FOUNDER), OpenAi, api::gateway::embeddings).limit(DefaultBodyLimit::disable()),
        post(
            "/api/v1/gateway/channels",
            Roles(&[CommunityOperator]),
            Api,
            api::gateway::create_channel,
        ),
        get("/api/v1/gateway/channels", Roles(COMMUNITY_ADMIN), Api, api::gateway::channels),
        put(
            "/api/v1/gateway/channels/{id}/status",
            Roles(PLATFORM),
            Api,
            api::gateway::set_channel_status,
        ),
        post(
            "/api/v1/gateway/prices",
            Roles(&[CommunityOperator]),
            Api,
            api::gateway::create_prices,
        ),
        // price tables under platform review (issue 18 item 3)
        get("/api/v1/gateway/prices", Roles(COMMUNITY_ADMIN), Api, api::gateway::price_tables),
        put(
            "/api/v1/gateway/prices/{operator_user_id}/{version}/status",
            Roles(PLATFORM),
            Api,
            api::gateway::set_price_table_status,
        ),
        post(
            "/api/v1/gateway/reference-prices",
            Roles(PLATFORM),
            Api,
            api::gateway::create_reference_prices,
        ),
        get(
            "/api/v1/gateway/reference-prices",
            Roles(REFERENCE_READERS),
            Api,
            api::gateway::reference_prices,
        ),
        post(
            "/gateway/reference-prices",
            Roles(PLATFORM),
            Page,
            pages::gateway::create_reference_prices,
        ),
        put("/api/v1/me/api-keys/{id}/limits", Auth, Api, api::gateway::set_key_limits),
        get("/api/v1/gateway/requests", Auth, Api, api::gateway::requests),
        get("/gateway", Roles(FOUNDER), Page, pages::gateway::opc),
        post("/gateway/keys/{id}/limits", Roles(FOUNDER), Page, pages::gateway::set_limits),
        get("/gateway/channels", Roles(COMMUNITY_ADMIN), Page, pages::gateway::channels),
        post(
            "/gateway/channels",
            Roles(&[CommunityOperator]),
            Page,
            pages::gateway::create_channel,
        ),
        post(
            "/gateway/channels/{id}/status",
            Roles(PLATFORM),
            Page,
            pages::gateway::set_channel_status,
        ),
        post("/gateway/prices", Roles(&[CommunityOperator]), Page, pages::gateway::create_prices),
        post(
            "/gateway/prices/{operator_user_id}/{version}/status",
            Roles(PLATFORM),
            Page,
            pages::gateway::set_price_table_status,
        ),
    ]
}

/// Datasets (M2.2): publishing, files, downloads.
fn datasets() -> Vec<Route> {
    use Access::{Authenticated as Auth, Roles};
    use Surface::{Api, Page};
    vec![
        // datasets (M2.2): operators publish, OPCs download with their API key, metered by bytes
        post("/api/v1/datasets", Roles(&[CommunityOperator]), Api, api::datasets::create),
        get("/api/v1/datasets", Auth, Api, api::datasets::list),
        put(
            "/api/v1/datasets/{id}/file",
            Roles(&[CommunityOperator]),
            Api,
            api::datasets::upload,
        )
        .limit(DefaultBodyLimit::disable()),
        put(
            "/api/v1/datasets/{id}/status",
            Roles(&[CommunityOperator]),
            Api,
            api::datasets::set_status,
        ),
        get("/api/v1/datasets/{id}/download", Roles(FOUNDER), Api, api::datasets::download),
        get(
            "/api/v1/datasets/{id}/downloads",
            Roles(DATASET_READERS),
            Api,
            api::datasets::downloads,
        ),
        // pages
        get("/gateway/datasets", Roles(DATASET_USERS), Page, pages::datasets::show),
        post(
            "/gateway/datasets",
            Roles(&[CommunityOperator]),
            Page,
            pages::datasets::create_dataset,
        )
        .upload(pages::datasets::PAGE_DATASET_BODY),
        post("/gateway/items", Roles(&[CommunityOperator]), Page, pages::datasets::create_items),
    ]
}

/// The demand board (M2.4): demands, proposals, cooperations, payments, disputes, notifications.
fn demands() -> Vec<Route> {
    use Access::{Authenticated as Auth, Public, Roles};
    use Surface::{Api, Page};
    vec![
        // demand board (M2.4): demands, matching, proposals, cooperations, notifications
        get("/api/v1/demands", Public, Api, api::demands::search),
        post("/api/v1/demands", Roles(COMPANY), Api, api::demands::create_demand).limit(DefaultBodyLimit::max(api::demands::MAX_FILE_BODY)),
        get("/api/v1/demands/mine", Roles(COMPANY), Api, api::demands::my_demands),
        get("/api/v1/demands/for-me", Roles(FOUNDER), Api, api::demands::for_me),
        get("/api/v1/demands/files/{sha256}", Auth, Api, api::demands::file),
        get("/api/v1/demands/{id}", Public, Api, api::demands::demand),
        post("/api/v1/demands/{id}/publish", Roles(COMPANY), Api, api::demands::publish),
        post("/api/v1/demands/{id}/cancel", Roles(COMPANY), Api, api::demands::cancel),
        get(
            "/api/v1/demands/{id}/recommendations",
            Roles(RECOMMENDERS),
            Api,
            api::demands::recommendations,
        ),
        get(
            "/api/v1/demands/{id}/proposals",
            Roles(DEMAND_READERS),
            Api,
            api::demands::proposals,
        ),
        post("/api/v1/demands/{id}/proposals", Roles(FOUNDER), Api, api::demands::propose),
        get("/api/v1/demands/proposals/mine", Roles(FOUNDER), Api, api::demands::my_proposals),
        post(
            "/api/v1/demands/proposals/{id}/shortlist",
            Roles(COMPANY),
            Api,
            api::demands::shortlist,
        ),
        post("/api/v1/demands/proposals/{id}/decline", Roles(COMPANY), Api, api::demands::decline),
        post("/api/v1/demands/proposals/{id}/accept", Roles(COMPANY), Api, api::demands::accept),
        get(
            "/api/v1/demands/proposals/{id}/messages",
            Roles(PARTIES),
            Api,
            api::demands::messages,
        ),
        post(
            "/api/v1/demands/proposals/{id}/messages",
            Roles(PARTIES),
            Api,
            api::demands::post_message,
        ),
        get("/api/v1/cooperations", Roles(DEMAND_READERS), Api, api::demands::cooperations),
        get("/api/v1/cooperations/summary", Roles(COMPANY), Api, api::demands::summary),
        get("/api/v1/cooperations/disputes", Roles(REVIEWERS), Api, api::demands::disputes),
        post(
            "/api/v1/cooperations/disputes/{id}/resolve",
            Roles(COMMITTEE),
            Api,
            api::demands::resolve,
        ),
        get("/api/v1/cooperations/flags", Roles(REVIEWERS), Api, api::demands::flags),
        get("/api/v1/cooperations/{id}", Roles(DEMAND_READERS), Api, api::demands::cooperation),
        post(
            "/api/v1/cooperations/{id}/payments",
            Roles(COMPANY),
            Api,
            api::demands::record_payment,
        )
        .limit(DefaultBodyLimit::max(api::demands::MAX_FILE_BODY)),
        post(
            "/api/v1/cooperations/payments/{id}/confirm",
            Roles(FOUNDER),
            Api,
            api::demands::confirm,
        ),
        post(
            "/api/v1/cooperations/payments/{id}/dispute",
            Roles(PARTIES),
            Api,
            api::demands::dispute,
        ),
        post("/api/v1/cooperations/{id}/amendments", Roles(COMPANY), Api, api::demands::amend),
        post(
            "/api/v1/cooperations/amendments/{id}/decide",
            Roles(FOUNDER),
            Api,
            api::demands::decide,
        ),
        post("/api/v1/cooperations/{id}/complete", Roles(COMPANY), Api, api::demands::complete),
        post("/api/v1/cooperations/{id}/ratings", Roles(PARTIES), Api, api::demands::rate),
        get("/api/v1/notifications", Auth, Api, api::demands::notifications),
        post("/api/v1/notifications/read", Auth, Api, api::demands::mark_read),
        // demand board pages (M2.4)
        get("/demands", Public, Page, pages::demands::browse),
        post("/demands", Roles(COMPANY), Page, pages::demands::create_demand).upload(crate::upload::PAGE_UPLOAD_BODY),
        get("/demands/new", Roles(COMPANY), Page, pages::demands::new_demand),
        get("/demands/mine", Roles(COMPANY), Page, pages::demands::mine),
        get("/demands/{id}", Public, Page, pages::demands::show),
        post("/demands/{id}/publish", Roles(COMPANY), Page, pages::demands::publish),
        post("/demands/{id}/cancel", Roles(COMPANY), Page, pages::demands::cancel),
        post("/demands/{id}/proposals", Roles(FOUNDER), Page, pages::demands::propose),
        post("/demands/proposals/{id}", Roles(COMPANY), Page, pages::demands::proposal_action),
        get("/demands/proposals/{id}", Roles(PARTIES), Page, pages::demands::thread),
        post(
            "/demands/proposals/{id}/messages",
            Roles(PARTIES),
            Page,
            pages::demands::post_message,
        ),
        get("/cooperations", Roles(DEMAND_READERS), Page, pages::demands::cooperations),
        get("/cooperations/review", Roles(REVIEWERS), Page, pages::demands::review),
        post(
            "/cooperations/disputes/{id}/resolve",
            Roles(COMMITTEE),
            Page,
            pages::demands::resolve,
        ),
        get("/cooperations/{id}", Roles(DEMAND_READERS), Page, pages::demands::cooperation),
        post("/cooperations/{id}", Roles(PARTIES), Page, pages::demands::coop_action),
        post("/cooperations/{id}/payments", Roles(COMPANY), Page, pages::demands::record_payment),
        post("/cooperations/payments/{id}", Roles(PARTIES), Page, pages::demands::payment_action),
        get("/notifications", Auth, Page, pages::demands::notifications),
        post("/notifications/read", Auth, Page, pages::demands::mark_read),
    ]
}

/// The Skill Store (M2.3): publishing, review, invocation (also through `/mcp`), dashboards.
fn skills() -> Vec<Route> {
    use Access::{Public, Roles};
    use Surface::{Api, Page};
    vec![
        // Skill Store (M2.3): API, the `/mcp` endpoint, pages
        get("/api/v1/skills", Public, Api, api::skills::search),
        post("/api/v1/skills", Roles(FOUNDER), Api, api::skills::publish).limit(DefaultBodyLimit::max(api::skills::MAX_PUBLISH_BODY)),
        get("/api/v1/skills/{id}", Public, Api, api::skills::detail),
        post("/api/v1/skills/{id}/versions", Roles(FOUNDER), Api, api::skills::add_version)
            .limit(DefaultBodyLimit::max(api::skills::MAX_PUBLISH_BODY)),
        post("/api/v1/skill-versions/{id}/submit", Roles(FOUNDER), Api, api::skills::submit),
        get("/api/v1/skill-reviews", Roles(PLATFORM), Api, api::skills::review_queue),
        post("/api/v1/skill-versions/{id}/review", Roles(PLATFORM), Api, api::skills::review),
        post("/api/v1/skills/{id}/delist", Roles(SKILL_DELISTERS), Api, api::skills::delist),
        post("/api/v1/skills/{id}/refresh", Roles(PLATFORM), Api, api::skills::refresh),
        put("/api/v1/skills/{id}/enabled", Roles(FOUNDER), Api, api::skills::set_enabled),
        post("/api/v1/skills/{id}/invoke", Roles(FOUNDER), Api, api::skills::invoke),
        get("/api/v1/skills/{id}/package", Roles(FOUNDER), Api, api::skills::package),
        post("/api/v1/skills/{id}/ratings", Roles(FOUNDER), Api, api::skills::rate),
        get("/api/v1/my/skills", Roles(FOUNDER), Api, api::skills::publisher_dashboard),
        get("/api/v1/my/skills/m23-basis", Roles(FOUNDER), Api, api::skills::publisher_basis),
        get("/api/v1/my/skill-usage", Roles(FOUNDER), Api, api::skills::invoker_dashboard),
        post("/mcp", Roles(FOUNDER), Api, crate::mcp::handle),
        get("/mcp", Roles(FOUNDER), Api, crate::mcp::handle),
        delete("/mcp", Roles(FOUNDER), Api, crate::mcp::handle),
        get("/skills", Public, Page, pages::skills::store),
        get("/skills/{id}", Public, Page, pages::skills::detail),
        post("/skills/{id}/enabled", Roles(FOUNDER), Page, pages::skills::set_enabled),
        post("/skills/{id}/rate", Roles(FOUNDER), Page, pages::skills::rate),
        get("/my/skills", Roles(FOUNDER), Page, pages::skills::mine),
        post("/my/skills", Roles(FOUNDER), Page, pages::skills::publish).upload(pages::skills::PAGE_PUBLISH_BODY),
        post("/my/skills/versions/{id}/submit", Roles(FOUNDER), Page, pages::skills::submit),
        get("/my/skills/usage", Roles(FOUNDER), Page, pages::skills::usage),
        get("/admin/skills", Roles(PLATFORM), Page, pages::skills::review_queue),
        post("/admin/skills/versions/{id}/review", Roles(PLATFORM), Page, pages::skills::review),
        post("/admin/skills/{id}/refresh", Roles(PLATFORM), Page, pages::skills::refresh),
        post("/skills/{id}/delist", Roles(SKILL_DELISTERS), Page, pages::skills::delist),
    ]
}

/// Applications and funds (issue 8): application types, files, review, payment batches, recoveries.
fn applications() -> Vec<Route> {
    use Access::{Public, Roles};
    use Surface::{Api, Page};
    vec![
        // applications and funds (issue 8)
        get("/api/v1/application-types", Public, Api, api::applications::types),
        get("/api/v1/applications/prefill", Roles(APPLICANTS), Api, api::applications::prefill),
        get("/api/v1/applications", Roles(APP_READERS), Api, api::applications::list),
        post("/api/v1/applications", Roles(APPLICANTS), Api, api::applications::create),
        get("/api/v1/applications/{id}", Roles(APP_READERS), Api, api::applications::show),
        put("/api/v1/applications/{id}", Roles(APPLICANTS), Api, api::applications::update),
        post("/api/v1/applications/{id}/files", Roles(APPLICANTS), Api, api::applications::upload).limit(DefaultBodyLimit::disable()),
        get(
            "/api/v1/applications/{id}/files/{file_id}",
            Roles(APP_READERS),
            Api,
            api::applications::download,
        ),
        post(
            "/api/v1/applications/{id}/submit",
            Roles(APPLICANTS),
            Api,
            api::applications::submit,
        ),
        post(
            "/api/v1/applications/{id}/review",
            Roles(APP_REVIEWERS),
            Api,
            api::applications::review,
        ),
        post(
            "/api/v1/applications/{id}/recovery",
            Roles(COMMITTEE),
            Api,
            api::applications::open_recovery,
        ),
        get("/api/v1/recoveries", Roles(APP_READERS), Api, api::applications::recoveries),
        post("/api/v1/recoveries/{id}/repay", Roles(FINANCE), Api, api::applications::repay),
        get("/api/v1/fund-batches", Roles(FUNDS_READERS), Api, api::applications::batches),
        post("/api/v1/fund-batches", Roles(FINANCE), Api, api::applications::pay),
        get("/api/v1/fund-batches/{id}", Roles(FUNDS_READERS), Api, api::applications::batch),
        get(
            "/api/v1/fund-batches/{id}/export",
            Roles(FUNDS_READERS),
            Api,
            api::applications::export,
        ),
        get("/api/v1/funds/dashboard", Roles(FUNDS_READERS), Api, api::applications::dashboard),
        get(
            "/api/v1/funds/dashboard/export",
            Roles(FUNDS_READERS),
            Api,
            api::applications::dashboard_export,
        ),
        // pages
        get("/applications", Roles(APP_READERS), Page, pages::applications::list),
        get("/applications/new", Roles(APPLICANTS), Page, pages::applications::new_form),
        post("/applications/new", Roles(APPLICANTS), Page, pages::applications::create),
        get("/applications/{id}", Roles(APP_READERS), Page, pages::applications::show),
        get("/applications/{id}/receipt", Roles(APP_READERS), Page, pages::applications::receipt),
        post("/applications/{id}/submit", Roles(APPLICANTS), Page, pages::applications::submit),
        post("/applications/{id}/review", Roles(APP_REVIEWERS), Page, pages::applications::review),
        post("/applications/{id}/recovery", Roles(COMMITTEE), Page, pages::applications::recovery),
        get("/finance/payments", Roles(FUNDS_READERS), Page, pages::applications::payments),
        post("/finance/payments", Roles(FINANCE), Page, pages::applications::pay),
        get("/committee/funds", Roles(FUNDS_READERS), Page, pages::applications::dashboard),
    ]
}

/// Records: loans, claims, talent housing (M7), milestones (M8.1).
fn records() -> Vec<Route> {
    use Access::Roles;
    use Surface::{Api, Page};
    vec![
        // records behind M6.3, M7.2, M8.1 (issue 8)
        post("/api/v1/loans", Roles(FOUNDER), Api, api::records::create_loan),
        get("/api/v1/loans", Roles(FOUNDER), Api, api::records::loans),
        post("/api/v1/loans/{id}/entries", Roles(FOUNDER), Api, api::records::add_entry),
        get("/api/v1/loans/claims", Roles(FOUNDER), Api, api::records::claims),
        post("/api/v1/loans/claims", Roles(FOUNDER), Api, api::records::create_claim),
        post("/api/v1/apartments", Roles(HOUSING_STAFF), Api, api::records::create_apartment),
        get("/api/v1/apartments", Roles(HOUSING_READERS), Api, api::records::apartments),
        post("/api/v1/housing/assignments", Roles(HOUSING_STAFF), Api, api::records::assign),
        post(
            "/api/v1/housing/assignments/{id}/move-out",
            Roles(HOUSING_STAFF),
            Api,
            api::records::move_out,
        ),
        get(
            "/api/v1/housing/assignments/{id}/schedule",
            Roles(HOUSING_VIEWERS),
            Api,
            api::records::rent_schedule,
        ),
        get("/api/v1/milestones", Roles(MILESTONE_READERS), Api, api::records::milestones),
        get("/my/records", Roles(FOUNDER), Page, pages::records::mine),
        post("/my/records/loans", Roles(FOUNDER), Page, pages::records::add_loan),
        post("/my/records/loans/{id}/entries", Roles(FOUNDER), Page, pages::records::add_entry),
        post("/my/records/claims", Roles(FOUNDER), Page, pages::records::claim),
        get("/housing", Roles(HOUSING_READERS), Page, pages::records::housing),
        post("/housing/apartments", Roles(HOUSING_STAFF), Page, pages::records::add_apartment),
        post("/housing/assignments", Roles(HOUSING_STAFF), Page, pages::records::assign),
        post(
            "/housing/assignments/{id}/move-out",
            Roles(HOUSING_STAFF),
            Page,
            pages::records::move_out,
        ),
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

/// Monthly bills and their payments (issue 19): the payer records paying, the payee confirms
/// or records a receipt, either disputes, the committee decides.
fn bills() -> Vec<Route> {
    use Access::Roles;
    use Surface::{Api, Page};
    vec![
        get("/api/v1/bills", Roles(BILL_READERS), Api, api::bills::list),
        get("/api/v1/bills/disputes", Roles(REVIEWERS), Api, api::bills::disputes),
        get("/api/v1/bills/receivables", Roles(BILL_READERS), Api, api::bills::receivables),
        post("/api/v1/bills/disputes/{id}/resolve", Roles(COMMITTEE), Api, api::bills::resolve),
        post("/api/v1/bills/payments/{id}/confirm", Roles(BILL_PARTIES), Api, api::bills::confirm),
        post("/api/v1/bills/payments/{id}/dispute", Roles(BILL_PARTIES), Api, api::bills::dispute),
        get("/api/v1/bills/{id}", Roles(BILL_READERS), Api, api::bills::show),
        get("/api/v1/bills/{id}/export.csv", Roles(BILL_READERS), Api, api::bills::export_csv),
        get("/api/v1/bills/{id}/export.xlsx", Roles(BILL_READERS), Api, api::bills::export_xlsx),
        post("/api/v1/bills/{id}/payments", Roles(FOUNDER), Api, api::bills::record_payment),
        post("/api/v1/bills/{id}/receipts", Roles(BILL_PARTIES), Api, api::bills::record_receipt),
        get("/my/bills", Roles(BILL_READERS), Page, pages::bills::list),
        get("/my/bills/{id}", Roles(BILL_READERS), Page, pages::bills::show),
        post("/my/bills/{id}/payments", Roles(BILL_PARTIES), Page, pages::bills::record).upload(crate::upload::PAGE_UPLOAD_BODY),
        post("/my/bills/payments/{id}", Roles(BILL_PARTIES), Page, pages::bills::payment_action),
        post("/my/bills/disputes/{id}/resolve", Roles(COMMITTEE), Page, pages::bills::resolve),
    ]
}
