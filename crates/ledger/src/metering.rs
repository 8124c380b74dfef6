//! The one place the platform's own usage events are built (M2.2, M2.3, M2.4): one typed
//! builder per metered kind, each producing the [`NewEvent`] its metering point appends —
//! the gateway's tokens, the Skill Store's calls and installs, dataset downloads, reported
//! compute, and confirmed cooperation payments — with its source, kind, unit, origin and
//! attributes fixed here. The events are exactly those the metering points built by hand
//! before (their canonical bytes, hence their leaf hashes, are unchanged).
//!
//! Why in the ledger crate: the builders are pure (no I/O, no clock), and their callers sit at
//! different layers — the gateway (`opchub_gateway`) and the store (`opchub_store`) are below
//! the application layer (`opchub_app`), which may not be depended on by them, and the app
//! itself may not depend on the gateway. The ledger crate is below all three.
//!
//! The one self-dealing rule ([`self_dealing`]) is here too: a use by the party paid for it
//! (or by the user who published it) is never subsidised (M2.3).

use crate::event::{NewEvent, Origin};
use opchub_domain::ExactFen;
use std::collections::BTreeMap;

/// The source of the gateway's token events.
pub const GATEWAY_SOURCE: &str = "gateway";
/// The source of the Skill Store's call and install events.
pub const SKILLS_SOURCE: &str = "skills";
/// The source of dataset download events.
pub const DATASETS_SOURCE: &str = "datasets";
/// The source of confirmed cooperation payments.
pub const COOPERATION_SOURCE: &str = "cooperation";
/// The source of committee-approved corrections.
pub const CORRECTIONS_SOURCE: &str = "corrections";
/// The source of confirmed payments of monthly bills (issue 19).
pub const BILLS_SOURCE: &str = "bills";

/// The platform's own source names: no outside source may be registered under one (issue 18
/// item 4), so a reported event can never pass for a metered one.
pub const RESERVED_SOURCES: &[&str] = &[
    GATEWAY_SOURCE,
    SKILLS_SOURCE,
    DATASETS_SOURCE,
    COOPERATION_SOURCE,
    CORRECTIONS_SOURCE,
    BILLS_SOURCE,
];

/// Whether `name` is (case-insensitively) one of the platform's own source names.
pub fn reserved_source(name: &str) -> bool {
    RESERVED_SOURCES.iter().any(|r| r.eq_ignore_ascii_case(name.trim()))
}

/// The kinds an outside source may be registered for: compute and data that a community
/// operator serves its OPCs (M2.2). Tokens, skill calls and cooperation payments are metered by
/// the platform itself and never reported.
pub const REPORTABLE_KINDS: &[&str] = &["compute.gpu_second", "data.byte"];

/// M2.3: a use is self-dealing when the user's party is the party paid for it, or the user is
/// the one who published what is used. Self-dealing usage is recorded but never qualifies.
pub fn self_dealing(user_party: &str, user_id: &str, paid_party: &str, publisher_user_id: &str) -> bool {
    user_party == paid_party || user_id == publisher_user_id
}

/// An observed event with no correction fields: what every platform metering point appends.
#[allow(clippy::too_many_arguments)]
fn observed(
    source: &str,
    source_event_id: String,
    kind: &str,
    unit: &str,
    subject: &str,
    counterparty: &str,
    quantity: i64,
    list_fen: i64,
    charged_fen: i64,
    price_version: String,
    occurred_at_ms: i64,
    attributes: BTreeMap<String, String>,
) -> NewEvent {
    NewEvent {
        source: source.into(),
        source_event_id,
        kind: kind.into(),
        subject: subject.into(),
        counterparty: counterparty.into(),
        quantity,
        unit: unit.into(),
        list_fen,
        charged_fen,
        list_sub_micro: 0,
        charged_sub_micro: 0,
        price_version,
        occurred_at_ms,
        origin: Origin::Observed,
        attributes,
        corrects_leaf_index: None,
        correction_reason: None,
        requested_by: None,
        approved_by: None,
    }
}

fn attrs<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The three token kinds of a gateway request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Prompt tokens not served from the upstream's cache.
    Input,
    CachedInput,
    Output,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Input => "token.input",
            TokenKind::CachedInput => "token.cached_input",
            TokenKind::Output => "token.output",
        }
    }
}

/// One gateway request, as its token events describe it.
#[derive(Debug, Clone, Copy)]
pub struct GatewayRequest<'a> {
    /// The request id (each kind's event is keyed `<request id>:<kind>`).
    pub request_id: &'a str,
    /// The caller (the key's OPC).
    pub subject: &'a str,
    /// The channel's operator (who is paid).
    pub operator_user_id: &'a str,
    pub channel_id: &'a str,
    pub model: &'a str,
    pub endpoint: &'a str,
    pub price_version: &'a str,
    /// Whether the usage was estimated (the upstream reported none).
    pub estimated: bool,
    pub outcome: &'a str,
    pub started_ms: i64,
}

/// A `token.*` event of a gateway request: `quantity` tokens of `kind` at the list and the
/// OPC price per million tokens of the price table, exactly (the fen rounded half-up plus
/// what the rounding left, issue 17 item 6). The charge never exceeds the list amount.
pub fn token(r: &GatewayRequest<'_>, kind: TokenKind, quantity: i64, list_per_million: i64, opc_per_million: i64) -> NewEvent {
    let kind = kind.as_str();
    let list = ExactFen::of_tokens(quantity, list_per_million);
    let charged = ExactFen::of_tokens(quantity, opc_per_million.min(list_per_million));
    let (list_fen, charged_fen) = (list.fen, charged.fen);
    let e = observed(
        GATEWAY_SOURCE,
        format!("{}:{kind}", r.request_id),
        kind,
        "token",
        r.subject,
        r.operator_user_id,
        quantity,
        list_fen,
        charged_fen,
        r.price_version.to_string(),
        r.started_ms,
        attrs([
            ("channel", r.channel_id.to_string()),
            ("model", r.model.to_string()),
            ("endpoint", r.endpoint.to_string()),
            ("estimated", r.estimated.to_string()),
            ("outcome", r.outcome.to_string()),
        ]),
    );
    NewEvent {
        list_sub_micro: list.sub_micro,
        charged_sub_micro: charged.sub_micro,
        ..e
    }
}

/// Why a skill call does not qualify for the subsidy (M2.3), or `None` when it does: failures
/// first, then self-dealing, then a call between related parties (issue 18 item 1: they share a
/// person, a phone or a payout bank account), then a skill whose upstream drifted from its
/// reviewed version.
pub fn skill_call_not_qualified(failed: bool, self_dealing: bool, related: bool, drifted: bool) -> Option<&'static str> {
    if failed {
        Some("failed")
    } else if self_dealing {
        Some("self_dealing")
    } else if related {
        Some("related_party")
    } else if drifted {
        Some("drifted")
    } else {
        None
    }
}

/// One call of a published skill's tool.
#[derive(Debug, Clone, Copy)]
pub struct SkillCall<'a> {
    /// The idempotency key of the call.
    pub call_key: &'a str,
    pub invoker_party: &'a str,
    pub publisher_party: &'a str,
    pub skill_slug: &'a str,
    pub version: &'a str,
    pub version_hash: &'a str,
    pub tool: &'a str,
    pub outcome: &'a str,
    pub latency_ms: i64,
    pub request_digest: &'a str,
    pub response_digest: &'a str,
    /// List and charged amount (a failed call is charged 0).
    pub charged_fen: i64,
    pub started_ms: i64,
    /// From [`skill_call_not_qualified`].
    pub not_qualified_reason: Option<&'a str>,
}

/// The `skill.call` event of a call.
pub fn skill_call(c: &SkillCall<'_>) -> NewEvent {
    let mut attributes = attrs([
        ("skill", c.skill_slug.to_string()),
        ("version", c.version.to_string()),
        ("version_hash", c.version_hash.to_string()),
        ("tool", c.tool.to_string()),
        ("publisher", c.publisher_party.to_string()),
        ("invoker", c.invoker_party.to_string()),
        ("outcome", c.outcome.to_string()),
        ("latency_ms", c.latency_ms.to_string()),
        ("request_digest", c.request_digest.to_string()),
        ("response_digest", c.response_digest.to_string()),
        ("qualified", c.not_qualified_reason.is_none().to_string()),
    ]);
    if let Some(r) = c.not_qualified_reason {
        attributes.insert("not_qualified_reason".to_string(), r.to_string());
    }
    observed(
        SKILLS_SOURCE,
        c.call_key.to_string(),
        "skill.call",
        "call",
        c.invoker_party,
        c.publisher_party,
        1,
        c.charged_fen,
        c.charged_fen,
        format!("skill:{}@{}", c.skill_slug, c.version).chars().take(120).collect(),
        c.started_ms,
        attributes,
    )
}

/// One install (package download) of a skill version.
#[derive(Debug, Clone, Copy)]
pub struct SkillInstall<'a> {
    /// The idempotency key (one per invoker and version).
    pub install_key: &'a str,
    pub invoker_party: &'a str,
    pub publisher_party: &'a str,
    pub skill_slug: &'a str,
    pub version: &'a str,
    pub version_hash: &'a str,
    /// From [`self_dealing`].
    pub self_dealing: bool,
    pub drifted: bool,
    pub occurred_at_ms: i64,
}

/// The `skill.install` event of an install (free; qualified unless self-dealing or drifted).
pub fn skill_install(i: &SkillInstall<'_>) -> NewEvent {
    observed(
        SKILLS_SOURCE,
        i.install_key.to_string(),
        "skill.install",
        "install",
        i.invoker_party,
        i.publisher_party,
        1,
        0,
        0,
        String::new(),
        i.occurred_at_ms,
        attrs([
            ("skill", i.skill_slug.to_string()),
            ("version", i.version.to_string()),
            ("version_hash", i.version_hash.to_string()),
            ("publisher", i.publisher_party.to_string()),
            ("invoker", i.invoker_party.to_string()),
            ("qualified", (!i.self_dealing && !i.drifted).to_string()),
        ]),
    )
}

/// One dataset download (or range of one), as delivered.
#[derive(Debug, Clone, Copy)]
pub struct DataDownload<'a> {
    pub download_id: &'a str,
    /// The downloading key's OPC.
    pub subject: &'a str,
    /// The dataset's operator (who is paid).
    pub operator_user_id: &'a str,
    /// The data price item.
    pub item: &'a str,
    pub dataset_id: &'a str,
    pub dataset_version: i64,
    pub sha256: &'a str,
    /// The first byte of the requested range and its length.
    pub range_start: i64,
    pub range_len: i64,
    /// `complete` or `interrupted`.
    pub outcome: &'a str,
    pub key_id: &'a str,
    /// Bytes delivered.
    pub sent: i64,
    pub list_fen: i64,
    pub charged_fen: i64,
    /// What rounding the amounts to the fen left, in millionths of a fen (per-GB items: a
    /// download worth less than a fen still counts exactly; issue 17 item 6). 0 per dataset.
    pub list_sub_micro: i64,
    pub charged_sub_micro: i64,
    pub price_version: &'a str,
    pub started_ms: i64,
}

/// The `data.byte` event of a download: the bytes delivered.
pub fn data_download(d: &DataDownload<'_>) -> NewEvent {
    let mut e = observed(
        DATASETS_SOURCE,
        d.download_id.to_string(),
        "data.byte",
        "byte",
        d.subject,
        d.operator_user_id,
        d.sent,
        d.list_fen,
        d.charged_fen,
        d.price_version.to_string(),
        d.started_ms,
        attrs([
            ("item", d.item.to_string()),
            ("dataset", d.dataset_id.to_string()),
            ("dataset_version", d.dataset_version.to_string()),
            ("sha256", d.sha256.to_string()),
            ("range", format!("{}-{}", d.range_start, d.range_start + d.range_len - 1)),
            ("outcome", d.outcome.to_string()),
            ("key", d.key_id.to_string()),
        ]),
    );
    e.list_sub_micro = d.list_sub_micro;
    e.charged_sub_micro = d.charged_sub_micro;
    e
}

/// GPU time an operator's cluster reports for an OPC (origin `reported`).
#[derive(Debug, Clone, Copy)]
pub struct ComputeUse<'a> {
    /// The reporting source (the cluster's source key).
    pub source: &'a str,
    pub source_event_id: &'a str,
    /// The OPC that used the GPUs.
    pub subject: &'a str,
    /// The operator.
    pub counterparty: &'a str,
    /// The compute price item.
    pub item: &'a str,
    pub cluster: &'a str,
    pub gpu_seconds: i64,
    pub list_fen: i64,
    pub charged_fen: i64,
    pub price_version: &'a str,
    pub occurred_at_ms: i64,
}

/// The `compute.gpu_second` event of reported GPU time.
pub fn compute(c: &ComputeUse<'_>) -> NewEvent {
    NewEvent {
        origin: Origin::Reported,
        ..observed(
            c.source,
            c.source_event_id.to_string(),
            "compute.gpu_second",
            "gpu_second",
            c.subject,
            c.counterparty,
            c.gpu_seconds,
            c.list_fen,
            c.charged_fen,
            c.price_version.to_string(),
            c.occurred_at_ms,
            attrs([("item", c.item.to_string()), ("cluster", c.cluster.to_string())]),
        )
    }
}

/// A confirmed payment of a cooperation.
#[derive(Debug, Clone, Copy)]
pub struct CooperationPayment<'a> {
    pub payment_id: &'a str,
    pub cooperation_id: &'a str,
    pub demand_id: &'a str,
    /// The paying company.
    pub enterprise_id: &'a str,
    pub opc_id: &'a str,
    pub amount_fen: i64,
    pub invoice_number: &'a str,
    pub invoice_sha256: Option<&'a str>,
    pub occurred_at_ms: i64,
    pub confirmed_by: Option<&'a str>,
}

/// The `cooperation.payment` event of a confirmed payment (M2.4): subject the paying company,
/// counterparty the OPC, quantity = list = charged = the amount in fen, the payment id as
/// source event id (so it is stored exactly once), the cooperation, demand and invoice as
/// attributes.
pub fn cooperation_payment(p: &CooperationPayment<'_>) -> NewEvent {
    let mut attributes = attrs([
        ("cooperation", p.cooperation_id.to_string()),
        ("demand", p.demand_id.to_string()),
        ("invoice_number", p.invoice_number.to_string()),
    ]);
    if let Some(sha) = p.invoice_sha256 {
        attributes.insert("invoice_sha256".to_string(), sha.to_string());
    }
    NewEvent {
        approved_by: p.confirmed_by.map(str::to_string),
        ..observed(
            COOPERATION_SOURCE,
            p.payment_id.to_string(),
            "cooperation.payment",
            "fen",
            p.enterprise_id,
            p.opc_id,
            p.amount_fen,
            p.amount_fen,
            p.amount_fen,
            String::new(),
            p.occurred_at_ms,
            attributes,
        )
    }
}

/// A confirmed payment of a monthly bill (issue 19 item 3).
#[derive(Debug, Clone, Copy)]
pub struct BillPayment<'a> {
    pub payment_id: &'a str,
    pub bill_id: &'a str,
    /// The bill's month (`YYYY-MM`).
    pub month: &'a str,
    /// The paying OPC.
    pub payer: &'a str,
    /// Who was paid (operator or publisher).
    pub payee: &'a str,
    pub amount_fen: i64,
    pub reference: &'a str,
    /// `payer` (recorded by the OPC, confirmed by the payee) or `payee` (a receipt recorded by
    /// the payee).
    pub recorded_side: &'a str,
    pub occurred_at_ms: i64,
    pub confirmed_by: Option<&'a str>,
}

/// The `bill.payment` event of a confirmed receipt: subject the payer, counterparty the payee,
/// quantity = list = charged = the amount in fen, the payment id as source event id (stored
/// exactly once), the bill, its month and the reference as attributes. It is money, not usage:
/// no settlement reads its kind, and bills never bill it ([`crate::bills::BILLED_KINDS`]).
pub fn bill_payment(p: &BillPayment<'_>) -> NewEvent {
    NewEvent {
        approved_by: p.confirmed_by.map(str::to_string),
        ..observed(
            BILLS_SOURCE,
            p.payment_id.to_string(),
            "bill.payment",
            "fen",
            p.payer,
            p.payee,
            p.amount_fen,
            p.amount_fen,
            p.amount_fen,
            String::new(),
            p.occurred_at_ms,
            attrs([
                ("bill", p.bill_id.to_string()),
                ("month", p.month.to_string()),
                ("reference", p.reference.to_string()),
                ("recorded_side", p.recorded_side.to_string()),
            ]),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn self_dealing_is_the_paid_party_or_the_publisher() {
        assert!(self_dealing("opc1", "u1", "opc1", "u2"));
        assert!(self_dealing("opc1", "u1", "opc2", "u1"));
        assert!(!self_dealing("opc1", "u1", "opc2", "u2"));
    }

    #[test]
    fn every_builder_produces_a_valid_kind_and_unit() {
        let r = GatewayRequest {
            request_id: "r1",
            subject: "opc",
            operator_user_id: "op",
            channel_id: "c",
            model: "m",
            endpoint: "/v1/chat/completions",
            price_version: "v1",
            estimated: false,
            outcome: "ok",
            started_ms: 1,
        };
        let t = token(&r, TokenKind::CachedInput, 10, 2, 1);
        assert_eq!(t.source_event_id, "r1:token.cached_input");
        assert_eq!(crate::event::unit_of(&t.kind), Some(t.unit.as_str()));
        let c = skill_call(&SkillCall {
            call_key: "k",
            invoker_party: "a",
            publisher_party: "b",
            skill_slug: "s",
            version: "1.0.0",
            version_hash: "h",
            tool: "t",
            outcome: "ok",
            latency_ms: 3,
            request_digest: "d1",
            response_digest: "d2",
            charged_fen: 5,
            started_ms: 1,
            not_qualified_reason: skill_call_not_qualified(false, true, false, false),
        });
        assert_eq!(c.attributes["qualified"], "false");
        assert_eq!(c.attributes["not_qualified_reason"], "self_dealing");
        assert_eq!(c.price_version, "skill:s@1.0.0");
        let p = cooperation_payment(&CooperationPayment {
            payment_id: "p",
            cooperation_id: "c",
            demand_id: "d",
            enterprise_id: "e",
            opc_id: "o",
            amount_fen: 100,
            invoice_number: "n",
            invoice_sha256: None,
            occurred_at_ms: 1,
            confirmed_by: Some("u"),
        });
        assert_eq!((p.quantity, p.charged_fen, p.approved_by.as_deref()), (100, 100, Some("u")));
        assert_eq!(crate::event::unit_of(&p.kind), Some(p.unit.as_str()));
        let b = bill_payment(&BillPayment {
            payment_id: "bp",
            bill_id: "2027-01.o.op",
            month: "2027-01",
            payer: "o",
            payee: "op",
            amount_fen: 250,
            reference: "R1",
            recorded_side: "payer",
            occurred_at_ms: 1,
            confirmed_by: Some("op"),
        });
        assert_eq!(
            (b.source.as_str(), b.kind.as_str(), b.charged_fen),
            (BILLS_SOURCE, "bill.payment", 250)
        );
        assert_eq!(crate::event::unit_of(&b.kind), Some(b.unit.as_str()));
        assert!(
            !crate::bills::billed(&b.kind, b.list_fen, b.charged_fen),
            "a payment is never billed as usage"
        );
    }
}
