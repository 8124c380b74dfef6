//! Every route × every role (and anonymous): who is let through and who is refused.
//! The expectations below are written independently of the route table; a route in the
//! table without an expectation here (or the other way round) fails the test, so no route
//! can be added without deciding who may call it.

use crate::common::*;
use opchub_domain::Role;
use reqwest::{Method, StatusCode};
use std::collections::BTreeSet;

/// Who may call each route: "*" = everyone incl. anonymous, "auth" = any signed-in role,
/// otherwise a list of role codes ("anon" = anonymous visitors).
const EXPECTED: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "*"),
    ("GET", "/readyz", "*"),
    ("GET", "/metrics", "*"),
    ("GET", "/api/openapi.json", "*"),
    ("GET", "/api/v1/stats", "*"),
    ("GET", "/api/v1/zones", "*"),
    ("GET", "/api/v1/theme-packages", "*"),
    ("GET", "/api/v1/communities", "*"),
    ("POST", "/api/v1/communities", "community_operator platform_operator"),
    ("GET", "/api/v1/communities/{id}", "*"),
    (
        "POST",
        "/api/v1/communities/{id}/workstations",
        "community_operator platform_operator",
    ),
    ("PUT", "/api/v1/workstations/{id}", "community_operator platform_operator"),
    ("POST", "/api/v1/registrations", "anon opc_founder"),
    ("GET", "/api/v1/me", "auth"),
    ("GET", "/api/v1/me/api-keys", "auth"),
    ("POST", "/api/v1/me/api-keys", "auth"),
    ("DELETE", "/api/v1/me/api-keys/{id}", "auth"),
    ("POST", "/api/v1/account/password", "auth"),
    ("GET", "/api/v1/my/opc", "opc_founder"),
    (
        "GET",
        "/api/v1/opcs",
        "specialist community_operator platform_operator committee auditor",
    ),
    (
        "GET",
        "/api/v1/opcs/{id}",
        "opc_founder specialist community_operator platform_operator committee auditor",
    ),
    ("PUT", "/api/v1/opcs/{id}/specialist", "committee"),
    ("GET", "/api/v1/enterprises", "auth"),
    ("POST", "/api/v1/enterprises", "platform_operator"),
    ("GET", "/api/v1/users", "platform_operator committee auditor"),
    ("POST", "/api/v1/users", "platform_operator"),
    ("PUT", "/api/v1/users/{id}/disabled", "platform_operator"),
    ("GET", "/api/v1/tickets", "opc_founder specialist"),
    ("POST", "/api/v1/tickets", "opc_founder"),
    ("GET", "/api/v1/tickets/{id}", "opc_founder specialist committee auditor"),
    ("POST", "/api/v1/tickets/{id}/replies", "opc_founder specialist"),
    ("POST", "/api/v1/tickets/{id}/close", "opc_founder specialist"),
    ("GET", "/api/v1/audit", "committee auditor"),
    ("POST", "/api/v1/ledger/events", "community_operator platform_operator"),
    ("GET", "/api/v1/policy/clauses", "*"),
    ("GET", "/api/v1/policy/calculator", "opc_founder community_operator enterprise"),
    (
        "GET",
        "/applications",
        "opc_founder community_operator enterprise committee agency finance auditor",
    ),
    ("GET", "/applications/new", "opc_founder community_operator enterprise"),
    ("POST", "/applications/new", "opc_founder community_operator enterprise"),
    (
        "GET",
        "/applications/{id}",
        "opc_founder community_operator enterprise committee agency finance auditor",
    ),
    (
        "GET",
        "/applications/{id}/receipt",
        "opc_founder community_operator enterprise committee agency finance auditor",
    ),
    (
        "GET",
        "/settlements/{batch}/lines/{clause}/{beneficiary}/statement",
        "opc_founder community_operator enterprise committee finance auditor",
    ),
    ("POST", "/applications/{id}/submit", "opc_founder community_operator enterprise"),
    ("POST", "/applications/{id}/review", "committee agency finance"),
    ("POST", "/applications/{id}/recovery", "committee"),
    ("GET", "/finance/payments", "committee finance auditor"),
    ("POST", "/finance/payments", "finance"),
    ("GET", "/committee/funds", "committee finance auditor"),
    ("POST", "/api/v1/loans", "opc_founder"),
    ("GET", "/api/v1/loans", "opc_founder"),
    ("POST", "/api/v1/loans/{id}/entries", "opc_founder"),
    ("GET", "/api/v1/loans/claims", "opc_founder"),
    ("POST", "/api/v1/loans/claims", "opc_founder"),
    ("POST", "/api/v1/apartments", "committee agency"),
    ("GET", "/api/v1/apartments", "committee agency auditor"),
    ("POST", "/api/v1/housing/assignments", "committee agency"),
    ("POST", "/api/v1/housing/assignments/{id}/move-out", "committee agency"),
    (
        "GET",
        "/api/v1/housing/assignments/{id}/schedule",
        "opc_founder committee agency auditor",
    ),
    ("GET", "/api/v1/milestones", "opc_founder committee agency auditor"),
    ("GET", "/my/records", "opc_founder"),
    ("POST", "/my/records/loans", "opc_founder"),
    ("POST", "/my/records/loans/{id}/entries", "opc_founder"),
    ("POST", "/my/records/claims", "opc_founder"),
    ("GET", "/housing", "committee agency auditor"),
    ("POST", "/housing/apartments", "committee agency"),
    ("POST", "/housing/assignments", "committee agency"),
    ("POST", "/housing/assignments/{id}/move-out", "committee agency"),
    ("GET", "/committee/overlaps", "committee finance auditor"),
    ("POST", "/committee/overlaps", "committee"),
    ("GET", "/api/v1/application-types", "*"),
    ("GET", "/api/v1/applications/prefill", "opc_founder community_operator enterprise"),
    (
        "GET",
        "/api/v1/applications",
        "opc_founder community_operator enterprise committee agency finance auditor",
    ),
    ("POST", "/api/v1/applications", "opc_founder community_operator enterprise"),
    (
        "GET",
        "/api/v1/applications/{id}",
        "opc_founder community_operator enterprise committee agency finance auditor",
    ),
    ("PUT", "/api/v1/applications/{id}", "opc_founder community_operator enterprise"),
    (
        "POST",
        "/api/v1/applications/{id}/files",
        "opc_founder community_operator enterprise",
    ),
    (
        "GET",
        "/api/v1/applications/{id}/files/{file_id}",
        "opc_founder community_operator enterprise committee agency finance auditor",
    ),
    (
        "POST",
        "/api/v1/applications/{id}/submit",
        "opc_founder community_operator enterprise",
    ),
    ("POST", "/api/v1/applications/{id}/review", "committee agency finance"),
    ("POST", "/api/v1/applications/{id}/recovery", "committee"),
    (
        "GET",
        "/api/v1/recoveries",
        "opc_founder community_operator enterprise committee agency finance auditor",
    ),
    ("POST", "/api/v1/recoveries/{id}/repay", "finance"),
    ("GET", "/api/v1/fund-batches", "committee finance auditor"),
    ("POST", "/api/v1/fund-batches", "finance"),
    ("GET", "/api/v1/fund-batches/{id}", "committee finance auditor"),
    ("GET", "/api/v1/fund-batches/{id}/export", "committee finance auditor"),
    ("GET", "/api/v1/funds/dashboard", "committee finance auditor"),
    ("GET", "/api/v1/funds/dashboard/export", "committee finance auditor"),
    ("GET", "/api/v1/settlements", "committee finance auditor"),
    ("POST", "/api/v1/settlements", "committee"),
    ("POST", "/api/v1/settlements/what-if", "committee"),
    ("GET", "/api/v1/settlements/{id}", "committee finance auditor"),
    ("POST", "/api/v1/settlements/{id}/approve", "committee"),
    ("POST", "/api/v1/settlements/{id}/pay", "finance"),
    (
        "GET",
        "/api/v1/settlement-recoveries",
        "opc_founder community_operator enterprise committee agency finance auditor",
    ),
    ("POST", "/api/v1/settlement-recoveries/{id}/repay", "finance"),
    ("GET", "/api/v1/my/grants", "opc_founder community_operator enterprise"),
    ("GET", "/api/v1/settlements/{id}/export", "committee finance auditor"),
    ("GET", "/api/v1/my/settlements", "opc_founder community_operator enterprise"),
    (
        "POST",
        "/api/v1/my/settlements/confirm",
        "opc_founder community_operator enterprise",
    ),
    ("GET", "/api/v1/exclusions", "committee auditor"),
    ("POST", "/api/v1/exclusions/{kind}", "committee"),
    ("GET", "/api/v1/overlap-grants", "committee auditor"),
    ("POST", "/api/v1/overlap-grants", "committee"),
    ("PUT", "/api/v1/parties/{kind}/{id}/industry-code", "committee platform_operator"),
    // integrity (issue 18)
    ("POST", "/api/v1/integrity/scan", "committee"),
    (
        "GET",
        "/api/v1/integrity/findings",
        "opc_founder community_operator enterprise committee auditor",
    ),
    (
        "GET",
        "/api/v1/integrity/findings/export",
        "opc_founder community_operator enterprise committee auditor",
    ),
    (
        "GET",
        "/api/v1/integrity/findings/{id}",
        "opc_founder community_operator enterprise committee auditor",
    ),
    ("POST", "/api/v1/integrity/findings/{id}/decide", "committee"),
    (
        "POST",
        "/api/v1/integrity/findings/{id}/answer",
        "opc_founder community_operator enterprise",
    ),
    ("GET", "/integrity", "opc_founder community_operator enterprise committee auditor"),
    ("POST", "/integrity/scan", "committee"),
    ("POST", "/integrity/{id}/decide", "committee"),
    ("POST", "/integrity/{id}/answer", "opc_founder community_operator enterprise"),
    // party facts (issue 17)
    (
        "GET",
        "/api/v1/parties/registrations",
        "committee platform_operator finance auditor",
    ),
    ("PUT", "/api/v1/parties/{kind}/{id}/registration", "committee platform_operator"),
    ("PUT", "/api/v1/users/{id}/agency", "platform_operator"),
    ("GET", "/api/v1/my/bank-accounts", "opc_founder community_operator enterprise"),
    (
        "PUT",
        "/api/v1/parties/{kind}/{id}/bank-account",
        "opc_founder community_operator enterprise",
    ),
    (
        "DELETE",
        "/api/v1/parties/{kind}/{id}/bank-account",
        "opc_founder community_operator enterprise",
    ),
    (
        "GET",
        "/api/v1/parties/{kind}/{id}/persons",
        "opc_founder community_operator enterprise committee platform_operator auditor",
    ),
    (
        "POST",
        "/api/v1/parties/{kind}/{id}/persons",
        "opc_founder community_operator enterprise committee platform_operator",
    ),
    (
        "DELETE",
        "/api/v1/parties/{kind}/{id}/persons/{person_id}",
        "opc_founder community_operator enterprise committee platform_operator",
    ),
    (
        "GET",
        "/api/v1/parties/{kind}/{id}/address",
        "opc_founder community_operator enterprise committee platform_operator auditor",
    ),
    (
        "PUT",
        "/api/v1/parties/{kind}/{id}/address",
        "opc_founder community_operator enterprise committee platform_operator",
    ),
    ("POST", "/my/address/{kind}/{id}", "opc_founder community_operator enterprise"),
    ("POST", "/my/persons/{kind}/{id}", "opc_founder community_operator enterprise"),
    (
        "POST",
        "/my/persons/{kind}/{id}/{person_id}/remove",
        "opc_founder community_operator enterprise",
    ),
    ("GET", "/admin/parties", "committee platform_operator"),
    ("POST", "/admin/parties/{kind}/{id}/registration", "committee platform_operator"),
    ("POST", "/admin/parties/{kind}/{id}/industry-code", "committee platform_operator"),
    ("POST", "/admin/users/{id}/agency", "platform_operator"),
    ("GET", "/my/bank-account", "opc_founder community_operator enterprise"),
    ("POST", "/my/bank-account/{kind}/{id}", "opc_founder community_operator enterprise"),
    (
        "POST",
        "/my/bank-account/{kind}/{id}/clear",
        "opc_founder community_operator enterprise",
    ),
    ("GET", "/policy", "*"),
    ("GET", "/policy/calculator", "opc_founder community_operator enterprise"),
    ("GET", "/my/settlements", "opc_founder community_operator enterprise"),
    ("POST", "/my/settlements/confirm", "opc_founder community_operator enterprise"),
    ("GET", "/committee/settlements", "committee finance auditor"),
    ("POST", "/committee/settlements", "committee"),
    ("POST", "/committee/settlements/what-if", "committee"),
    ("POST", "/committee/exclusions", "committee"),
    ("GET", "/committee/settlements/{id}", "committee finance auditor"),
    ("POST", "/committee/settlements/{id}/approve", "committee"),
    ("POST", "/committee/settlements/{id}/pay", "finance"),
    ("GET", "/api/v1/ledger/events/{leaf_index}", "platform_operator committee auditor"),
    ("POST", "/api/v1/ledger/corrections", "committee"),
    ("GET", "/api/v1/ledger/sources", "platform_operator committee auditor"),
    ("POST", "/api/v1/ledger/sources", "platform_operator"),
    ("GET", "/api/v1/ledger/checkpoints", "*"),
    ("GET", "/api/v1/ledger/checkpoint", "*"),
    ("GET", "/.well-known/opchub-ledger-key", "*"),
    ("GET", "/api/v1/ledger/proofs/inclusion", "*"),
    ("GET", "/api/v1/ledger/proofs/consistency", "*"),
    ("POST", "/api/v1/ledger/periods/{period}/close", "committee"),
    ("GET", "/v1/models", "opc_founder"),
    ("POST", "/v1/chat/completions", "opc_founder"),
    ("POST", "/v1/embeddings", "opc_founder"),
    ("POST", "/api/v1/gateway/channels", "community_operator"),
    ("GET", "/api/v1/gateway/channels", "community_operator platform_operator"),
    ("PUT", "/api/v1/gateway/channels/{id}/status", "platform_operator"),
    ("POST", "/api/v1/gateway/prices", "community_operator"),
    ("GET", "/api/v1/gateway/prices", "community_operator platform_operator"),
    ("POST", "/api/v1/gateway/reference-prices", "platform_operator"),
    (
        "GET",
        "/api/v1/gateway/reference-prices",
        "community_operator platform_operator committee auditor",
    ),
    (
        "PUT",
        "/api/v1/gateway/prices/{operator_user_id}/{version}/status",
        "platform_operator",
    ),
    ("PUT", "/api/v1/me/api-keys/{id}/limits", "auth"),
    ("GET", "/api/v1/gateway/requests", "auth"),
    ("POST", "/api/v1/datasets", "community_operator"),
    ("GET", "/api/v1/datasets", "auth"),
    ("PUT", "/api/v1/datasets/{id}/file", "community_operator"),
    ("PUT", "/api/v1/datasets/{id}/status", "community_operator"),
    ("GET", "/api/v1/datasets/{id}/download", "opc_founder"),
    (
        "GET",
        "/api/v1/datasets/{id}/downloads",
        "opc_founder community_operator platform_operator committee auditor",
    ),
    ("GET", "/api/v1/policy/headroom", "auth"),
    ("GET", "/api/v1/ledger/statement", "auth"),
    ("GET", "/api/v1/ledger/statement.csv", "auth"),
    ("GET", "/api/v1/ledger/statement.xlsx", "auth"),
    ("GET", "/api/v1/skills", "*"),
    ("POST", "/api/v1/skills", "opc_founder"),
    ("GET", "/api/v1/skills/{id}", "*"),
    ("POST", "/api/v1/skills/{id}/versions", "opc_founder"),
    ("POST", "/api/v1/skill-versions/{id}/submit", "opc_founder"),
    ("GET", "/api/v1/skill-reviews", "platform_operator"),
    ("POST", "/api/v1/skill-versions/{id}/review", "platform_operator"),
    ("POST", "/api/v1/skills/{id}/delist", "opc_founder platform_operator"),
    ("POST", "/api/v1/skills/{id}/refresh", "platform_operator"),
    ("PUT", "/api/v1/skills/{id}/enabled", "opc_founder"),
    ("POST", "/api/v1/skills/{id}/invoke", "opc_founder"),
    ("GET", "/api/v1/skills/{id}/package", "opc_founder"),
    ("POST", "/api/v1/skills/{id}/ratings", "opc_founder"),
    ("GET", "/api/v1/my/skills", "opc_founder"),
    ("GET", "/api/v1/my/skills/m23-basis", "opc_founder"),
    ("GET", "/api/v1/my/skill-usage", "opc_founder"),
    ("POST", "/mcp", "opc_founder"),
    ("GET", "/mcp", "opc_founder"),
    ("DELETE", "/mcp", "opc_founder"),
    ("GET", "/skills", "*"),
    ("GET", "/skills/{id}", "*"),
    ("POST", "/skills/{id}/enabled", "opc_founder"),
    ("POST", "/skills/{id}/rate", "opc_founder"),
    ("GET", "/my/skills", "opc_founder"),
    ("POST", "/my/skills", "opc_founder"),
    ("POST", "/my/skills/versions/{id}/submit", "opc_founder"),
    ("GET", "/my/skills/usage", "opc_founder"),
    ("GET", "/admin/skills", "platform_operator"),
    ("POST", "/admin/skills/versions/{id}/review", "platform_operator"),
    ("POST", "/admin/skills/{id}/refresh", "platform_operator"),
    ("POST", "/skills/{id}/delist", "opc_founder platform_operator"),
    ("GET", "/", "*"),
    ("GET", "/static/site.css", "*"),
    ("GET", "/static/evidence.js", "*"),
    ("GET", "/static/playground.js", "*"),
    ("GET", "/lang/{code}", "*"),
    ("GET", "/workbench", "auth"),
    ("GET", "/login", "*"),
    ("POST", "/login", "*"),
    ("GET", "/register", "anon opc_founder"),
    ("POST", "/register", "anon opc_founder"),
    ("GET", "/communities", "*"),
    ("GET", "/api/reference", "*"),
    ("GET", "/communities/{id}", "*"),
    ("GET", "/my/company", "opc_founder"),
    ("POST", "/my/tickets", "opc_founder"),
    ("GET", "/tickets/{id}", "opc_founder specialist committee auditor"),
    ("POST", "/tickets/{id}/reply", "opc_founder specialist"),
    ("POST", "/tickets/{id}/close", "opc_founder specialist"),
    ("GET", "/specialist/queue", "specialist"),
    ("GET", "/my/keys", "auth"),
    ("POST", "/my/keys", "auth"),
    ("POST", "/my/keys/{id}/revoke", "auth"),
    ("POST", "/my/password", "auth"),
    ("GET", "/admin/users", "platform_operator"),
    ("POST", "/admin/users", "platform_operator"),
    ("GET", "/admin/communities", "community_operator platform_operator"),
    ("POST", "/admin/communities", "community_operator platform_operator"),
    ("POST", "/admin/workstations/{id}", "community_operator platform_operator"),
    ("GET", "/admin/opcs", "committee"),
    ("GET", "/admin/opcs/{id}", "specialist committee"),
    ("POST", "/admin/opcs/{id}/specialist", "committee"),
    ("GET", "/audit", "committee auditor"),
    ("GET", "/gateway", "opc_founder"),
    ("POST", "/gateway/keys/{id}/limits", "opc_founder"),
    ("GET", "/gateway/channels", "community_operator platform_operator"),
    ("POST", "/gateway/channels", "community_operator"),
    ("POST", "/gateway/channels/{id}/status", "platform_operator"),
    ("POST", "/gateway/prices", "community_operator"),
    ("POST", "/gateway/reference-prices", "platform_operator"),
    ("POST", "/gateway/prices/{operator_user_id}/{version}/status", "platform_operator"),
    ("GET", "/gateway/datasets", "opc_founder community_operator"),
    ("POST", "/gateway/datasets", "community_operator"),
    ("POST", "/gateway/items", "community_operator"),
    ("GET", "/ledger/statement", "auth"),
    ("GET", "/ledger/checkpoints", "*"),
    ("GET", "/ledger/proof", "*"),
    // demand board (M2.4)
    ("GET", "/api/v1/demands", "*"),
    ("POST", "/api/v1/demands", "enterprise"),
    ("GET", "/api/v1/demands/mine", "enterprise"),
    ("GET", "/api/v1/demands/for-me", "opc_founder"),
    ("GET", "/api/v1/demands/files/{sha256}", "auth"),
    ("GET", "/api/v1/demands/{id}", "*"),
    ("POST", "/api/v1/demands/{id}/publish", "enterprise"),
    ("POST", "/api/v1/demands/{id}/cancel", "enterprise"),
    (
        "GET",
        "/api/v1/demands/{id}/recommendations",
        "enterprise committee auditor platform_operator",
    ),
    (
        "GET",
        "/api/v1/demands/{id}/proposals",
        "enterprise opc_founder committee auditor platform_operator",
    ),
    ("POST", "/api/v1/demands/{id}/proposals", "opc_founder"),
    ("GET", "/api/v1/demands/proposals/mine", "opc_founder"),
    ("POST", "/api/v1/demands/proposals/{id}/shortlist", "enterprise"),
    ("POST", "/api/v1/demands/proposals/{id}/decline", "enterprise"),
    ("POST", "/api/v1/demands/proposals/{id}/accept", "enterprise"),
    ("GET", "/api/v1/demands/proposals/{id}/messages", "enterprise opc_founder"),
    ("POST", "/api/v1/demands/proposals/{id}/messages", "enterprise opc_founder"),
    (
        "GET",
        "/api/v1/cooperations",
        "enterprise opc_founder committee auditor platform_operator",
    ),
    ("GET", "/api/v1/cooperations/summary", "enterprise"),
    ("GET", "/api/v1/cooperations/disputes", "committee auditor"),
    ("POST", "/api/v1/cooperations/disputes/{id}/resolve", "committee"),
    ("GET", "/api/v1/cooperations/flags", "committee auditor"),
    (
        "GET",
        "/api/v1/cooperations/{id}",
        "enterprise opc_founder committee auditor platform_operator",
    ),
    ("POST", "/api/v1/cooperations/{id}/payments", "enterprise"),
    ("POST", "/api/v1/cooperations/payments/{id}/confirm", "opc_founder"),
    ("POST", "/api/v1/cooperations/payments/{id}/dispute", "enterprise opc_founder"),
    ("POST", "/api/v1/cooperations/{id}/amendments", "enterprise"),
    ("POST", "/api/v1/cooperations/amendments/{id}/decide", "opc_founder"),
    ("POST", "/api/v1/cooperations/{id}/complete", "enterprise"),
    ("POST", "/api/v1/cooperations/{id}/ratings", "enterprise opc_founder"),
    ("GET", "/api/v1/notifications", "auth"),
    ("POST", "/api/v1/notifications/read", "auth"),
    ("GET", "/demands", "*"),
    ("POST", "/demands", "enterprise"),
    ("GET", "/demands/new", "enterprise"),
    ("GET", "/demands/mine", "enterprise"),
    ("GET", "/demands/{id}", "*"),
    ("POST", "/demands/{id}/publish", "enterprise"),
    ("POST", "/demands/{id}/cancel", "enterprise"),
    ("POST", "/demands/{id}/proposals", "opc_founder"),
    ("POST", "/demands/proposals/{id}", "enterprise"),
    ("GET", "/demands/proposals/{id}", "enterprise opc_founder"),
    ("POST", "/demands/proposals/{id}/messages", "enterprise opc_founder"),
    ("GET", "/cooperations", "enterprise opc_founder committee auditor platform_operator"),
    ("GET", "/cooperations/review", "committee auditor"),
    ("POST", "/cooperations/disputes/{id}/resolve", "committee"),
    (
        "GET",
        "/cooperations/{id}",
        "enterprise opc_founder committee auditor platform_operator",
    ),
    ("POST", "/cooperations/{id}", "enterprise opc_founder"),
    ("POST", "/cooperations/{id}/payments", "enterprise"),
    ("POST", "/cooperations/payments/{id}", "enterprise opc_founder"),
    ("GET", "/notifications", "auth"),
    ("POST", "/notifications/read", "auth"),
    // monthly bills (issue 19)
    ("GET", "/api/v1/bills", "opc_founder community_operator committee auditor"),
    ("GET", "/api/v1/bills/disputes", "committee auditor"),
    (
        "GET",
        "/api/v1/bills/receivables",
        "opc_founder community_operator committee auditor",
    ),
    ("POST", "/api/v1/bills/disputes/{id}/resolve", "committee"),
    ("POST", "/api/v1/bills/payments/{id}/confirm", "opc_founder community_operator"),
    ("POST", "/api/v1/bills/payments/{id}/dispute", "opc_founder community_operator"),
    ("GET", "/api/v1/bills/{id}", "opc_founder community_operator committee auditor"),
    (
        "GET",
        "/api/v1/bills/{id}/export.csv",
        "opc_founder community_operator committee auditor",
    ),
    (
        "GET",
        "/api/v1/bills/{id}/export.xlsx",
        "opc_founder community_operator committee auditor",
    ),
    ("POST", "/api/v1/bills/{id}/payments", "opc_founder"),
    ("POST", "/api/v1/bills/{id}/receipts", "opc_founder community_operator"),
    ("GET", "/my/bills", "opc_founder community_operator committee auditor"),
    ("GET", "/my/bills/{id}", "opc_founder community_operator committee auditor"),
    ("POST", "/my/bills/{id}/payments", "opc_founder community_operator"),
    ("POST", "/my/bills/payments/{id}", "opc_founder community_operator"),
    ("POST", "/my/bills/disputes/{id}/resolve", "committee"),
    // Last: it ends the session of the client that calls it.
    ("POST", "/logout", "auth"),
];

/// Paths answered like the JSON API (401 rather than a redirect to the login page).
fn api_like(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/v1/") || path == "/mcp"
}

fn allowed(rule: &str, role: Option<Role>) -> bool {
    match (rule, role) {
        ("*", _) => true,
        (list, None) => list.split_whitespace().any(|x| x == "anon"),
        ("auth", Some(_)) => true,
        (list, Some(r)) => list.split_whitespace().any(|x| x == r.as_str()),
    }
}

#[test]
fn every_route_has_an_expectation_and_every_expectation_a_route() {
    let table: BTreeSet<(String, String)> = opchub_web::routes::rules()
        .into_iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    let expected: BTreeSet<(String, String)> = EXPECTED.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    let unexpected: Vec<_> = table.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&table).collect();
    assert!(unexpected.is_empty(), "routes without an expectation in this test: {unexpected:?}");
    assert!(missing.is_empty(), "expected routes that do not exist: {missing:?}");
}

#[tokio::test]
async fn every_route_times_every_role() {
    let app = TestApp::start().await;
    // Each role signs in with a browser session; the OpenAI-compatible `/v1` routes and dataset
    // downloads (M2.2) are called the way programs call them, with the same user's API key.
    let mut clients: Vec<(Option<Role>, Client, Client)> = vec![(None, app.client(), app.client())];
    for role in Role::ALL {
        let (c, _) = app.user(&format!("u_{}", role.as_str()), role).await;
        let k = c.post_json("/api/v1/me/api-keys", serde_json::json!({"name": "k"})).await.json();
        let keyed = Client::with_key(&app.base, k["secret"].as_str().unwrap());
        clients.push((Some(role), c, keyed));
    }
    let mut checked = 0;
    for (method, path, rule) in EXPECTED {
        // Path parameters name nothing that exists: a caller who passes the role gate meets
        // a 404 (or a validation error), one who does not is refused before any lookup.
        let concrete = path
            .replace("{id}", "no-such-id")
            .replace("{code}", "en")
            .replace("{leaf_index}", "999999")
            .replace("{period}", "1999-13")
            .replace("{operator_user_id}", "no-such-user")
            .replace("{version}", "no-such-version");
        let method: Method = method.parse().unwrap();
        for (role, session, keyed) in &clients {
            let keyed_route =
                concrete.starts_with("/v1/") || (concrete.starts_with("/api/v1/datasets/") && concrete.ends_with("/download"));
            let client = if keyed_route { keyed } else { session };
            let body = match method {
                Method::GET | Method::DELETE => None,
                _ if api_like(&concrete) => Some(Body::Json(serde_json::json!({}))),
                _ => Some(Body::Form(vec![])),
            };
            let r = client.send(method.clone(), &concrete, body).await;
            let refused = match r.status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    // Past the role gate, refused for what the account lacks (no OPC yet; a
                    // company not verified in the registry, M2.4) — not a role refusal.
                    r.code() != "validation_failed" && !r.text.contains("no_company") && !r.text.contains("company_not_verified")
                }
                StatusCode::SEE_OTHER => r.location().starts_with("/login?next="),
                _ => false,
            };
            let want = allowed(rule, *role);
            assert_eq!(
                !refused,
                want,
                "{method} {path} as {:?}: got {} {} (expected {})",
                role.map(|r| r.as_str()),
                r.status,
                &r.text.chars().take(200).collect::<String>(),
                if want { "allowed" } else { "refused" }
            );
            if !want {
                let expected_status = match (role, api_like(&concrete)) {
                    (None, true) => StatusCode::UNAUTHORIZED,
                    (None, false) => StatusCode::SEE_OTHER,
                    (Some(_), _) => StatusCode::FORBIDDEN,
                };
                assert_eq!(r.status, expected_status, "{method} {path} as {role:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, EXPECTED.len() * 10);
}
