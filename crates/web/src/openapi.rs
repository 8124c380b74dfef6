//! The OpenAPI 3.1 document, generated from the handlers' annotations. A golden copy is
//! committed at `crates/web/openapi.json`; a test fails when the two differ.

use crate::api;
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("opk_…").build()),
        );
    }
}

/// Every operation documents the error answers any API route may give, in the one error shape
/// (issue 20: every response documented): a malformed request (400), no or a bad key (401), not
/// allowed (403), not found (404), a conflict with the current state (409), a body over the
/// limit (413), a body that is not JSON (415), invalid input with per-field codes (422), a rate
/// limit (429), and the platform or a dependency unavailable (503). An operation's own
/// description of one of these (its codes) is kept.
struct ErrorResponses;

const ERROR_STATUSES: &[(&str, &str)] = &[
    ("400", "Malformed request (code `bad_request` …)"),
    ("401", "No or an invalid API key or session (`unauthorized`)"),
    ("403", "Not allowed for the caller's role or party (`forbidden`, …)"),
    ("404", "Not found, or not the caller's (`not_found`)"),
    ("409", "Conflicts with the current state (a stable code says which)"),
    ("413", "The body is over the limit (`payload_too_large`)"),
    ("415", "The body is not of the expected type (`unsupported_media_type`)"),
    ("422", "Invalid input: `validation_failed` with `fields` and `field_codes`"),
    ("429", "Rate limited (`rate_limited`)"),
    ("503", "The platform or one of its dependencies is unavailable"),
];

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let map = || ObjectBuilder::new().additional_properties(Some(AdditionalProperties::RefOr(text().build().into())));
        let inner = ObjectBuilder::new()
            .property("code", text())
            .required("code")
            .property("message", text())
            .required("message")
            .property("fields", map())
            .property("field_codes", map())
            .property("field_details", map())
            .property("detail", text());
        let schema = ObjectBuilder::new().property("error", inner).required("error").build();
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert("Error".to_string(), schema.into());
        // Each error answer once, under `components.responses`; operations refer to it.
        for (status, description) in ERROR_STATUSES {
            let response = ResponseBuilder::new()
                .description(*description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build(),
                )
                .build();
            components.responses.insert(format!("Error{status}"), response.into());
        }
        for item in openapi.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                for (status, _) in ERROR_STATUSES {
                    op.responses
                        .responses
                        .entry((*status).to_string())
                        .or_insert_with(|| Ref::from_response_name(format!("Error{status}")).into());
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "OPC Hub API", description = "丰台园OPC社区综合服务平台 — JSON API. Errors: {\"error\":{\"code\",\"message\",\"fields\"}}.", version = "1"),
    modifiers(&Security, &ErrorResponses),
    security(("api_key" = [])),
    paths(
        api::stats, api::zones, api::theme_packages, api::communities, api::create_community, api::community,
        api::add_workstations, api::set_workstation, api::create_registration, api::me, api::list_keys, api::create_key,
        api::revoke_key, api::change_password, api::my_opc, api::opcs, api::opc, api::assign_specialist, api::enterprises, api::create_enterprise,
        api::users, api::create_user, api::set_user_disabled, api::tickets, api::create_ticket, api::ticket, api::reply_ticket,
        api::close_ticket, api::audit,
        api::ledger::ingest, api::ledger::correct, api::ledger::create_source, api::ledger::sources, api::ledger::event,
        api::ledger::checkpoints, api::ledger::latest_checkpoint, api::ledger::inclusion, api::ledger::consistency,
        api::ledger::close_period, api::ledger::statement, api::ledger::statement_csv, api::ledger::statement_xlsx,
        api::policy::headroom,
        api::settlement::clauses, api::settlement::calculator, api::settlement::list, api::settlement::create,
        api::settlement::what_if, api::settlement::show, api::settlement::approve, api::settlement::pay, api::settlement::recoveries, api::settlement::repay, api::settlement::my_grants, api::settlement::export, api::settlement::mine,
        api::settlement::confirm, api::settlement::exclusion_lists, api::settlement::import, api::settlement::overlaps,
        api::settlement::add_overlap, api::settlement::set_industry_code,
        // party facts (issue 17)
        api::party_facts::registrations, api::party_facts::set_registration, api::party_facts::set_agency,
        api::party_facts::my_bank_accounts, api::party_facts::set_bank_account, api::party_facts::clear_bank_account,
        api::party_facts::persons, api::party_facts::add_person, api::party_facts::remove_person,
        api::party_facts::address, api::party_facts::set_address,
        // integrity (issue 18)
        api::integrity::scan, api::integrity::findings, api::integrity::export, api::integrity::finding, api::integrity::decide, api::integrity::answer,
        api::gateway::create_channel, api::gateway::channels, api::gateway::set_channel_status, api::gateway::create_prices,
        api::gateway::price_tables, api::gateway::set_price_table_status, api::gateway::create_reference_prices, api::gateway::reference_prices,
        api::gateway::set_key_limits, api::gateway::requests,
        // compute and data (M2.2)
        api::datasets::create, api::datasets::list, api::datasets::upload, api::datasets::set_status, api::datasets::download,
        api::datasets::downloads,
        // demand board (M2.4)
        api::demands::search, api::demands::create_demand, api::demands::my_demands, api::demands::for_me, api::demands::file,
        api::demands::demand, api::demands::publish, api::demands::cancel, api::demands::recommendations, api::demands::proposals,
        api::demands::propose, api::demands::my_proposals, api::demands::shortlist, api::demands::decline, api::demands::accept,
        api::demands::messages, api::demands::post_message, api::demands::cooperations, api::demands::summary,
        api::demands::disputes, api::demands::resolve, api::demands::flags, api::demands::cooperation,
        api::demands::record_payment, api::demands::confirm, api::demands::dispute, api::demands::amend, api::demands::decide,
        api::demands::complete, api::demands::rate, api::demands::notifications, api::demands::mark_read,
        api::skills::search, api::skills::publish, api::skills::detail, api::skills::add_version, api::skills::submit,
        api::skills::review_queue, api::skills::review, api::skills::delist, api::skills::refresh, api::skills::set_enabled,
        api::skills::invoke, api::skills::package, api::skills::rate, api::skills::publisher_dashboard, api::skills::publisher_basis, api::skills::invoker_dashboard,
        // applications and funds (issue 8)
        api::applications::types, api::applications::prefill, api::applications::create, api::applications::update,
        api::applications::upload, api::applications::download, api::applications::show, api::applications::list,
        api::applications::submit, api::applications::review, api::applications::pay, api::applications::batches,
        api::applications::batch, api::applications::export, api::applications::open_recovery, api::applications::repay,
        api::applications::recoveries, api::applications::dashboard, api::applications::dashboard_export,
        api::records::create_loan, api::records::loans, api::records::add_entry, api::records::claims, api::records::create_claim,
        api::records::create_apartment, api::records::apartments, api::records::assign, api::records::move_out,
        api::records::rent_schedule, api::records::milestones,
        // monthly bills (issue 19)
        api::bills::list, api::bills::show, api::bills::export_csv, api::bills::export_xlsx, api::bills::record_payment, api::bills::record_receipt,
        api::bills::confirm, api::bills::dispute, api::bills::disputes, api::bills::resolve, api::bills::receivables,
    )
)]
pub struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Pretty JSON with a trailing newline, as committed in the golden file.
pub fn document_json() -> String {
    let mut s = document().to_pretty_json().unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

/// One operation of the API reference page, read from the OpenAPI document.
#[derive(serde::Serialize)]
struct Operation {
    method: String,
    path: String,
    summary: String,
    description: String,
    params: Vec<serde_json::Value>,
    body: String,
    responses: Vec<serde_json::Value>,
}

/// The last segment of a `$ref` (`#/components/schemas/Statement` → `Statement`).
fn schema_name(v: &serde_json::Value) -> Option<String> {
    v.get("$ref")
        .and_then(|r| r.as_str())
        .map(|r| r.rsplit('/').next().unwrap_or(r).to_string())
        .or_else(|| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
}

/// The API grouped by tag, in path order: what the reference page shows (issue 21 item 7).
fn reference_groups() -> Vec<serde_json::Value> {
    let doc = serde_json::to_value(document()).unwrap_or_default();
    let mut groups: std::collections::BTreeMap<String, Vec<Operation>> = std::collections::BTreeMap::new();
    let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) else {
        return vec![];
    };
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").trim().to_string();
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let tag = op
                .get("tags")
                .and_then(|t| t.get(0))
                .and_then(|t| t.as_str())
                .unwrap_or("other")
                .to_string();
            let params = op
                .get("parameters")
                .and_then(|p| p.as_array())
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            serde_json::json!({ "name": text(p, "name"), "location": text(p, "in"),
                                "required": p.get("required").and_then(|r| r.as_bool()).unwrap_or(false),
                                "description": text(p, "description") })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let body = op
                .get("requestBody")
                .and_then(|b| b.get("content"))
                .and_then(|c| c.as_object())
                .map(|c| {
                    c.iter()
                        .map(|(ct, m)| match m.get("schema").and_then(schema_name) {
                            Some(name) => format!("{ct} · {name}"),
                            None => ct.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join("；")
                })
                .unwrap_or_default();
            let responses = op
                .get("responses")
                .and_then(|r| r.as_object())
                .map(|rs| {
                    rs.iter()
                        .map(|(status, r)| serde_json::json!({ "status": status, "description": text(r, "description") }))
                        .collect()
                })
                .unwrap_or_default();
            groups.entry(tag).or_default().push(Operation {
                method: method.to_string(),
                path: path.clone(),
                summary: text(op, "summary"),
                description: text(op, "description"),
                params,
                body,
                responses,
            });
        }
    }
    groups
        .into_iter()
        .map(|(tag, operations)| serde_json::json!({ "tag": tag, "operations": operations }))
        .collect()
}

/// `GET /api/reference`: the API as a page people read (issue 21 item 7), generated from the
/// same OpenAPI document as `/api/openapi.json`, linked in every page's footer.
pub async fn reference(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
    caller: crate::auth::Caller,
    axum::Extension(csrf): axum::Extension<crate::auth::CsrfToken>,
) -> axum::response::Response {
    crate::view::render(
        &s,
        caller.0.as_ref(),
        &csrf.0,
        "api_reference.html",
        axum::http::StatusCode::OK,
        minijinja::context! { groups => reference_groups() },
    )
}
