//! The site's navigation (issue 21 item 3): the pages each role works on, grouped by task.
//! Pure data: a table of entries (group, address, catalog key, roles) that the layout renders
//! as menus (`details`/`summary`, no script needed). Keeping it a table makes "which role sees
//! which page" one place to read and to test.

use opchub_domain::Role;
use serde::Serialize;

/// One entry: where it goes and its label (a catalog key); `id` where tests and pages name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub href: &'static str,
    pub label: &'static str,
    pub id: Option<&'static str>,
}

/// One menu: its label (a catalog key) and entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub key: &'static str,
    pub label: &'static str,
    pub items: Vec<Item>,
}

/// Who sees an entry.
#[derive(Clone, Copy)]
enum Who {
    Anyone,
    Signed,
    Anon,
    Only(&'static [Role]),
}

use Role::{
    Agency as AG, Auditor as AU, Committee as CM, CommunityOperator as CO, Enterprise as EN, Finance as FI, OpcFounder as OF,
    PlatformOperator as PO, Specialist as SP,
};

/// The menus, in order: (group, address, label, id, who).
const ENTRIES: &[(&str, &str, &str, Option<&str>, Who)] = &[
    // 公共服务: the public pages.
    ("public", "/", "nav.home", None, Who::Anyone),
    ("public", "/communities", "nav.communities", None, Who::Anyone),
    ("public", "/policy", "nav.policy", None, Who::Anyone),
    ("public", "/skills", "skill.store_title", None, Who::Anyone),
    ("public", "/demands", "demand.nav.board", None, Who::Anyone),
    ("public", "/register", "nav.register", None, Who::Anon),
    ("public", "/login", "nav.login", None, Who::Anon),
    // 政策兑现: applications, 免申即享 settlement, funds (M1–M8).
    (
        "policy",
        "/applications",
        "nav.applications",
        Some("nav-applications"),
        Who::Only(&[OF, CO, EN]),
    ),
    (
        "policy",
        "/applications",
        "nav.review_applications",
        Some("nav-applications"),
        Who::Only(&[CM, AG, FI, AU]),
    ),
    ("policy", "/my/settlements", "nav.settlements_mine", None, Who::Only(&[OF, CO, EN])),
    (
        "policy",
        "/committee/settlements",
        "nav.settlements",
        None,
        Who::Only(&[CM, FI, AU]),
    ),
    ("policy", "/committee/overlaps", "nav.overlaps", None, Who::Only(&[CM, FI, AU])),
    ("policy", "/housing", "nav.housing", None, Who::Only(&[CM, AG, AU])),
    ("policy", "/finance/payments", "nav.fund_payments", None, Who::Only(&[CM, FI, AU])),
    ("policy", "/committee/funds", "nav.funds_dashboard", None, Who::Only(&[CM, FI, AU])),
    // 用量与账单: the gateway, usage, bills (M2.2).
    ("usage", "/gateway", "nav.gateway", None, Who::Only(&[OF])),
    ("usage", "/gateway/channels", "nav.gateway_channels", None, Who::Only(&[CO, PO])),
    ("usage", "/gateway/datasets", "nav.datasets", None, Who::Only(&[OF, CO])),
    ("usage", "/ledger/statement", "nav.usage", None, Who::Only(&[OF, CO])),
    ("usage", "/ledger/statement", "nav.statements", None, Who::Only(&[CM, AU, PO, FI])),
    ("usage", "/my/bills", "bills.nav", Some("nav-bills"), Who::Only(&[OF, CO, CM, AU])),
    ("usage", "/my/keys", "nav.keys", None, Who::Signed),
    // 技能与合作: the Skill Store (M2.3) and the demand board (M2.4).
    ("market", "/my/skills", "skill.mine_title", None, Who::Only(&[OF])),
    ("market", "/my/skills/usage", "skill.usage_title", None, Who::Only(&[OF])),
    ("market", "/admin/skills", "skill.review_title", None, Who::Only(&[PO])),
    ("market", "/demands/mine", "demand.nav.mine", None, Who::Only(&[EN])),
    (
        "market",
        "/cooperations",
        "demand.nav.cooperations",
        None,
        Who::Only(&[EN, OF, CM, AU, PO]),
    ),
    ("market", "/cooperations/review", "demand.nav.review", None, Who::Only(&[CM, AU])),
    // 监管与管理: registry, oversight, audit.
    ("oversight", "/specialist/queue", "nav.queue", None, Who::Only(&[SP])),
    ("oversight", "/admin/opcs", "nav.admin_opcs", None, Who::Only(&[CM])),
    (
        "oversight",
        "/admin/communities",
        "nav.admin_communities",
        None,
        Who::Only(&[PO, CO]),
    ),
    ("oversight", "/admin/users", "nav.admin_users", None, Who::Only(&[PO])),
    (
        "oversight",
        "/admin/parties",
        "facts.registrations_title",
        Some("nav-parties"),
        Who::Only(&[CM, PO]),
    ),
    (
        "oversight",
        "/integrity",
        "findings.title",
        Some("nav-integrity"),
        Who::Only(&[CM, AU]),
    ),
    ("oversight", "/audit", "nav.audit", None, Who::Only(&[CM, AU])),
    // 我的: the account's own records.
    ("mine", "/my/company", "nav.my_company", None, Who::Only(&[OF])),
    ("mine", "/my/records", "nav.records", None, Who::Only(&[OF])),
    (
        "mine",
        "/my/bank-account",
        "facts.bank_title",
        Some("nav-bank-account"),
        Who::Only(&[OF, CO, EN]),
    ),
    (
        "mine",
        "/notifications",
        "demand.nav.notifications",
        Some("nav-notifications"),
        Who::Signed,
    ),
];

const GROUPS: &[(&str, &str)] = &[
    ("public", "nav.group.public"),
    ("policy", "nav.group.policy"),
    ("usage", "nav.group.usage"),
    ("market", "nav.group.market"),
    ("oversight", "nav.group.oversight"),
    ("mine", "nav.group.mine"),
];

fn sees(who: Who, role: Option<Role>) -> bool {
    match who {
        Who::Anyone => true,
        Who::Signed => role.is_some(),
        Who::Anon => role.is_none(),
        Who::Only(roles) => role.is_some_and(|r| roles.contains(&r)),
    }
}

/// The menus a visitor (`None`) or a role sees, empty menus left out.
pub fn menus(role: Option<Role>) -> Vec<Group> {
    GROUPS
        .iter()
        .filter_map(|(key, label)| {
            let items: Vec<Item> = ENTRIES
                .iter()
                .filter(|(g, _, _, _, who)| g == key && sees(*who, role))
                .map(|(_, href, label, id, _)| Item { href, label, id: *id })
                .collect();
            (!items.is_empty()).then_some(Group { key, label, items })
        })
        .collect()
}

/// Every catalog key the navigation names (the catalog test reads these).
pub fn catalog_keys() -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = GROUPS.iter().map(|(_, l)| *l).collect();
    keys.extend(ENTRIES.iter().map(|e| e.2));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Role; 9] = [OF, EN, CO, PO, SP, CM, AG, FI, AU];

    #[test]
    fn a_visitor_sees_the_public_pages_and_how_to_sign_in() {
        let m = menus(None);
        assert_eq!(m.len(), 1);
        let hrefs: Vec<_> = m[0].items.iter().map(|i| i.href).collect();
        assert!(hrefs.contains(&"/register") && hrefs.contains(&"/login"));
    }

    #[test]
    fn every_role_has_its_task_menus_and_no_sign_in_link() {
        for r in ROLES {
            let m = menus(Some(r));
            assert!(m.len() >= 3, "{r:?} has {} menus", m.len());
            let all: Vec<_> = m.iter().flat_map(|g| g.items.iter().map(|i| i.href)).collect();
            assert!(!all.contains(&"/login") && !all.contains(&"/register"), "{r:?}");
            assert!(all.contains(&"/notifications") && all.contains(&"/my/keys"), "{r:?}");
            // An address appears once per role (one label per page).
            let mut seen = std::collections::BTreeSet::new();
            assert!(all.iter().all(|h| seen.insert(*h)), "{r:?} has a page twice: {all:?}");
        }
    }

    #[test]
    fn the_founder_finds_gateway_bills_and_settlements() {
        let all: Vec<_> = menus(Some(OF)).into_iter().flat_map(|g| g.items).map(|i| i.href).collect();
        for h in ["/gateway", "/my/bills", "/my/settlements", "/applications", "/my/company"] {
            assert!(all.contains(&h), "{h}");
        }
        let finance: Vec<_> = menus(Some(FI)).into_iter().flat_map(|g| g.items).map(|i| i.href).collect();
        assert!(finance.contains(&"/finance/payments") && !finance.contains(&"/gateway"));
    }
}
