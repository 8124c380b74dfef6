//! Monthly bills (对账单, issue 19 item 2), the pure part: which ledger events are billed,
//! to whom, and how they group into lines. One bill per (payer, payee, booking month): the
//! payer is the event's subject (the OPC), the payee its counterparty — the community
//! operator for models, compute and data (a community named as counterparty is billed to its
//! operator), the publisher party for its paid skills. Lines group by (kind, model / skill /
//! item, price version, unit) and, for corrections, the corrected event, so a correction booked
//! into a later month shows there as an adjustment line naming what it corrects.
//!
//! Amounts are integer fen on every event (the metering points round once per event as the
//! price table says: `opchub_ledger::items`), so a line is the exact sum of its events and the
//! bill total the exact sum of its lines; nothing is rounded again here.

use opchub_domain::money::round_micro;
use opchub_domain::ExactFen;
use std::collections::BTreeMap;

/// The kinds that are billed: what an OPC is charged for (M2.2 models, compute and data; M2.3
/// paid skills). Installs are free, cooperation and bill payments are money, not usage.
pub const BILLED_KINDS: &[&str] = &[
    "token.input",
    "token.cached_input",
    "token.output",
    "compute.gpu_second",
    "data.byte",
    "skill.call",
];

/// The billed kinds whose list − charged difference is the M2.2 discount an operator gives: the
/// factor kinds (models, compute, data), not paid skill calls (M2.3).
pub const FACTOR_KINDS: &[&str] = &[
    "token.input",
    "token.cached_input",
    "token.output",
    "compute.gpu_second",
    "data.byte",
];

/// Whether an event of `kind` with these amounts is on a bill: a billed kind with something
/// listed or charged (a failed skill call, charged nothing, is no line of a bill).
pub fn billed(kind: &str, list_fen: i64, charged_fen: i64) -> bool {
    billed_exact(
        kind,
        ExactFen {
            fen: list_fen,
            sub_micro: 0,
        },
        ExactFen {
            fen: charged_fen,
            sub_micro: 0,
        },
    )
}

/// [`billed`] of exact amounts: 400 tokens at ¥10 per million list 0.4 fen, and are on the bill.
pub fn billed_exact(kind: &str, list: ExactFen, charged: ExactFen) -> bool {
    BILLED_KINDS.contains(&kind) && (list.micro() != 0 || charged.micro() != 0)
}

/// What a line is of: the model of tokens, the skill of a call, the price item of compute
/// and data.
pub fn item_of(kind: &str, attributes: &BTreeMap<String, String>) -> String {
    let key = if kind.starts_with("token.") {
        "model"
    } else if kind == "skill.call" {
        "skill"
    } else {
        "item"
    };
    attributes.get(key).cloned().unwrap_or_default()
}

/// A line's key: (kind, item, price version, unit, corrected leaf).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineKey {
    pub kind: String,
    pub item: String,
    pub price_version: String,
    pub unit: String,
    /// For an adjustment line: the leaf index of the corrected event.
    pub corrects_leaf_index: Option<i64>,
}

/// A line's sums. Amounts add up exactly (in millionths of a fen) and the line's fen are
/// rounded half-up once, from the exact sum (issue 17 item 6): 100 requests of 0.2 fen are a
/// 20 fen line, not 100 × 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineSums {
    pub quantity: i64,
    pub list_fen: i64,
    pub charged_fen: i64,
    pub events: i64,
    list_micro: i128,
    charged_micro: i128,
}

/// A bill's key: (month, payer, payee).
pub type BillKey = (String, String, String);

/// Bills being summed from events, keyed by (month, payer, payee), their lines in key order.
#[derive(Debug, Default)]
pub struct Accumulator {
    pub bills: BTreeMap<BillKey, BTreeMap<LineKey, LineSums>>,
}

/// One event as a bill reads it.
pub struct BilledEvent<'a> {
    pub period: &'a str,
    pub kind: &'a str,
    pub subject: &'a str,
    /// The payee (the counterparty, a community already mapped to its operator).
    pub payee: &'a str,
    pub quantity: i64,
    pub unit: &'a str,
    pub list_fen: i64,
    pub charged_fen: i64,
    /// What per-event rounding left, in millionths of a fen (0 for whole-fen kinds).
    pub list_sub_micro: i64,
    pub charged_sub_micro: i64,
    pub price_version: &'a str,
    pub attributes: &'a BTreeMap<String, String>,
    pub corrects_leaf_index: Option<i64>,
}

impl Accumulator {
    /// Adds an event (ignored when it is not billed).
    pub fn add(&mut self, e: &BilledEvent<'_>) {
        let list = ExactFen {
            fen: e.list_fen,
            sub_micro: e.list_sub_micro,
        };
        let charged = ExactFen {
            fen: e.charged_fen,
            sub_micro: e.charged_sub_micro,
        };
        if !billed_exact(e.kind, list, charged) {
            return;
        }
        let key = LineKey {
            kind: e.kind.to_string(),
            item: item_of(e.kind, e.attributes),
            price_version: e.price_version.to_string(),
            unit: e.unit.to_string(),
            corrects_leaf_index: e.corrects_leaf_index,
        };
        let bill = self
            .bills
            .entry((e.period.to_string(), e.subject.to_string(), e.payee.to_string()))
            .or_default();
        let l = bill.entry(key).or_default();
        l.quantity += e.quantity;
        l.list_micro += list.micro();
        l.charged_micro += charged.micro();
        l.list_fen = round_micro(l.list_micro);
        l.charged_fen = round_micro(l.charged_micro);
        l.events += 1;
    }
}

/// The id of the bill of (month, payer, payee): the same for the running bill and, once the
/// month is closed, the issued one.
pub fn bill_id(month: &str, payer: &str, payee: &str) -> String {
    format!("{month}.{payer}.{payee}")
}

/// The (month, payer, payee) of a bill id.
pub fn parse_bill_id(id: &str) -> Option<BillKey> {
    let mut it = id.splitn(3, '.');
    let (m, a, b) = (it.next()?, it.next()?, it.next()?);
    let month = crate::event::parse_period(m)?;
    (month == m && !a.is_empty() && !b.is_empty() && !b.contains('.')).then(|| (month, a.to_string(), b.to_string()))
}

/// The first day (`YYYY-MM-DD`) after a `YYYY-MM` month: the earliest date a payment of its
/// bill may carry.
pub fn day_after_month(month: &str) -> Option<String> {
    let (y, m) = month.split_once('-')?;
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    Some(format!("{y:04}-{m:02}-01"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_group_by_item_and_version_and_sum_exactly() {
        let mut acc = Accumulator::default();
        let model = |m: &str| BTreeMap::from([("model".to_string(), m.to_string())]);
        let (a, b) = (model("m1"), model("m2"));
        for (attrs, q, l, c) in [(&a, 10, 7, 3), (&a, 5, 4, 2), (&b, 1, 1, 1)] {
            acc.add(&BilledEvent {
                period: "2027-01",
                kind: "token.input",
                subject: "opc",
                payee: "op",
                quantity: q,
                unit: "token",
                list_fen: l,
                charged_fen: c,
                list_sub_micro: 0,
                charged_sub_micro: 0,
                price_version: "v1",
                attributes: attrs,
                corrects_leaf_index: None,
            });
        }
        // A failed skill call (nothing charged) is on no bill; a cooperation payment neither.
        let none = BTreeMap::new();
        for kind in ["skill.call", "cooperation.payment"] {
            acc.add(&BilledEvent {
                period: "2027-01",
                kind,
                subject: "opc",
                payee: "op",
                quantity: 1,
                unit: "call",
                list_fen: if kind == "skill.call" { 0 } else { 100 },
                charged_fen: if kind == "skill.call" { 0 } else { 100 },
                list_sub_micro: 0,
                charged_sub_micro: 0,
                price_version: "",
                attributes: &none,
                corrects_leaf_index: None,
            });
        }
        let bill = &acc.bills[&("2027-01".to_string(), "opc".to_string(), "op".to_string())];
        assert_eq!(bill.len(), 2);
        let first = bill.values().next().unwrap();
        assert_eq!((first.quantity, first.list_fen, first.charged_fen, first.events), (15, 11, 5, 2));
        assert_eq!(bill.values().map(|l| l.charged_fen).sum::<i64>(), 6);
    }

    /// Issue 17 item 6: 100 requests of 500 input tokens at list ¥10/M and OPC price ¥4/M are
    /// one line of ¥0.50 list and ¥0.20 charged — not ¥1.00 list and ¥0 charged.
    #[test]
    fn a_line_adds_exact_amounts_and_rounds_once() {
        let mut acc = Accumulator::default();
        let attrs = BTreeMap::from([("model".to_string(), "m".to_string())]);
        let (list, charged) = (ExactFen::of_tokens(500, 1_000), ExactFen::of_tokens(500, 400));
        for _ in 0..100 {
            acc.add(&BilledEvent {
                period: "2027-01",
                kind: "token.input",
                subject: "opc",
                payee: "op",
                quantity: 500,
                unit: "token",
                list_fen: list.fen,
                charged_fen: charged.fen,
                list_sub_micro: list.sub_micro,
                charged_sub_micro: charged.sub_micro,
                price_version: "v1",
                attributes: &attrs,
                corrects_leaf_index: None,
            });
        }
        let line = acc.bills.values().next().unwrap().values().next().unwrap();
        assert_eq!((line.quantity, line.list_fen, line.charged_fen, line.events), (50_000, 50, 20, 100));
        // 400 tokens list 0.4 fen: on the bill although each event rounds to 0 fen.
        assert!(billed_exact(
            "token.input",
            ExactFen::of_tokens(400, 1_000),
            ExactFen::of_tokens(400, 0)
        ));
    }

    #[test]
    fn bill_ids_round_trip_and_months_end() {
        let id = bill_id("2027-01", "opc1", "op2");
        assert_eq!(parse_bill_id(&id), Some(("2027-01".into(), "opc1".into(), "op2".into())));
        assert_eq!(parse_bill_id("2027-13.a.b"), None);
        assert_eq!(parse_bill_id("2027-01.a"), None);
        assert_eq!(day_after_month("2027-12").as_deref(), Some("2028-01-01"));
        assert_eq!(day_after_month("2027-01").as_deref(), Some("2027-02-01"));
    }
}
