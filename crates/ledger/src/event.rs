//! Usage events: what a source reports, how it is validated, and its canonical bytes.
//! The canonical bytes of a stored event are the leaf of the Merkle tree, so every column
//! that matters (quantity, amounts, parties, times, booking period) is in them; any later
//! change to a stored row changes its leaf hash.

use opchub_domain::money::{ExactFen, MICRO_PER_FEN};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Metered kinds and the one unit each is counted in.
pub const KINDS: &[(&str, &str)] = &[
    ("token.input", "token"),
    ("token.cached_input", "token"),
    ("token.output", "token"),
    ("skill.call", "call"),
    ("skill.install", "install"),
    ("compute.gpu_second", "gpu_second"),
    ("data.byte", "byte"),
    ("cooperation.payment", "fen"),
    // A confirmed payment of a monthly bill (issue 19): money, never usage.
    ("bill.payment", "fen"),
];

pub fn unit_of(kind: &str) -> Option<&'static str> {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, u)| *u)
}

/// Limits on what one event may carry.
pub const MAX_QUANTITY: i64 = 1_000_000_000_000_000;
pub const MAX_AMOUNT_FEN: i64 = 100_000_000_000_000;
pub const MAX_ATTRIBUTES: usize = 16;
pub const MAX_ATTRIBUTES_BYTES: usize = 2048;
pub const MAX_ID_LEN: usize = 128;
/// An event may not claim to have happened more than this far in the future (clock skew).
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Measured by the platform itself (gateway, skill proxy).
    Observed,
    /// Reported by an outside source (an operator's GPU cluster).
    Reported,
    /// A correction of an earlier event; never rewrites it.
    Correction,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Observed => "observed",
            Origin::Reported => "reported",
            Origin::Correction => "correction",
        }
    }
    pub fn parse(s: &str) -> Option<Origin> {
        match s {
            "observed" => Some(Origin::Observed),
            "reported" => Some(Origin::Reported),
            "correction" => Some(Origin::Correction),
            _ => None,
        }
    }
}

/// What a source submits (all fields as received; validated by [`EventInput::validate`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventInput {
    /// The idempotency key, unique per source for all time.
    pub source_event_id: Option<String>,
    pub kind: Option<String>,
    /// Who used or paid (an OPC id, user id, …).
    pub subject: Option<String>,
    /// Who is paid or served (publisher, operator, OPC).
    pub counterparty: Option<String>,
    pub quantity: Option<i64>,
    pub unit: Option<String>,
    /// List price of this usage, in fen.
    pub list_amount_fen: Option<i64>,
    /// What the subject was actually charged, in fen.
    pub charged_amount_fen: Option<i64>,
    /// Instead of `list_amount_fen`: the list price exactly, in millionths of a fen, for usage
    /// worth less than a fen an event (compute seconds, data bytes). Kept exact until a
    /// statement, bill or settlement line rounds the sum once (issue 17 item 6). Not for
    /// cooperation payments, which are money in whole fen.
    pub list_amount_micro_fen: Option<i64>,
    /// Instead of `charged_amount_fen`: what was charged, in millionths of a fen.
    pub charged_amount_micro_fen: Option<i64>,
    pub price_version: Option<String>,
    /// RFC 3339 time on the source's clock.
    pub occurred_at: Option<String>,
    /// Small string attributes (≤ 16 entries, ≤ 2 KiB in all).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// For corrections: the leaf index of the corrected event, the reason and who approved it.
    pub corrects_leaf_index: Option<i64>,
    pub correction_reason: Option<String>,
    pub approved_by: Option<String>,
}

/// A validated event, not yet stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    pub source: String,
    pub source_event_id: String,
    pub kind: String,
    pub subject: String,
    pub counterparty: String,
    pub quantity: i64,
    pub unit: String,
    /// List and charged amount rounded half-up to the fen …
    pub list_fen: i64,
    pub charged_fen: i64,
    /// … and what that rounding left, in millionths of a fen (`exact − fen × 10⁶`): token
    /// usage priced per million tokens is exact this way, so sums round once per line
    /// (issue 17 item 6). 0 for whole-fen amounts (every kind but tokens).
    #[serde(default)]
    pub list_sub_micro: i64,
    #[serde(default)]
    pub charged_sub_micro: i64,
    pub price_version: String,
    pub occurred_at_ms: i64,
    pub origin: Origin,
    pub attributes: BTreeMap<String, String>,
    pub corrects_leaf_index: Option<i64>,
    pub correction_reason: Option<String>,
    pub requested_by: Option<String>,
    pub approved_by: Option<String>,
}

/// Why an event was refused: a stable code and the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventError {
    pub code: String,
    pub field: Option<String>,
}

impl EventError {
    pub fn new(code: &str, field: Option<&str>) -> Self {
        EventError {
            code: code.to_string(),
            field: field.map(str::to_string),
        }
    }
}

fn id_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && !s.chars().any(|c| c.is_control())
}

impl EventInput {
    /// Validates one event from `source` (`origin` is decided by how it arrived; a correction
    /// also needs `requested_by`). `now_ms` is the server clock.
    pub fn validate(&self, source: &str, origin: Origin, requested_by: Option<&str>, now_ms: i64) -> Result<NewEvent, EventError> {
        let req = |v: &Option<String>, f: &str| -> Result<String, EventError> {
            let s = v.as_deref().map(str::trim).unwrap_or("");
            if s.is_empty() {
                return Err(EventError::new("required", Some(f)));
            }
            if !id_ok(s) {
                return Err(EventError::new("invalid_identifier", Some(f)));
            }
            Ok(s.to_string())
        };
        let source_event_id = req(&self.source_event_id, "source_event_id")?;
        let kind = req(&self.kind, "kind")?;
        let Some(expected_unit) = unit_of(&kind) else {
            return Err(EventError::new("unknown_kind", Some("kind")));
        };
        let unit = req(&self.unit, "unit")?;
        if unit != expected_unit {
            return Err(EventError::new("unit_mismatch", Some("unit")));
        }
        let subject = req(&self.subject, "subject")?;
        let counterparty = req(&self.counterparty, "counterparty")?;
        let quantity = self.quantity.ok_or_else(|| EventError::new("required", Some("quantity")))?;
        let correction = origin == Origin::Correction;
        if quantity.unsigned_abs() > MAX_QUANTITY as u64 {
            return Err(EventError::new("quantity_out_of_range", Some("quantity")));
        }
        if quantity < 0 && !correction {
            return Err(EventError::new("negative_quantity", Some("quantity")));
        }
        // Each amount in whole fen or, exactly, in millionths of a fen — not both.
        let exact = |fen: Option<i64>, micro: Option<i64>, f: &'static str, mf: &'static str| -> Result<(i128, &'static str), EventError> {
            match (fen, micro) {
                (Some(_), Some(_)) => Err(EventError::new("amount_given_twice", Some(mf))),
                (_, Some(_)) if kind == "cooperation.payment" => Err(EventError::new("whole_fen_only", Some(mf))),
                (_, Some(m)) => Ok((i128::from(m), mf)),
                (v, None) => Ok((i128::from(v.unwrap_or(0)) * i128::from(MICRO_PER_FEN), f)),
            }
        };
        let (list_micro, list_field) = exact(
            self.list_amount_fen,
            self.list_amount_micro_fen,
            "list_amount_fen",
            "list_amount_micro_fen",
        )?;
        let (charged_micro, charged_field) = exact(
            self.charged_amount_fen,
            self.charged_amount_micro_fen,
            "charged_amount_fen",
            "charged_amount_micro_fen",
        )?;
        for (v, f) in [(list_micro, list_field), (charged_micro, charged_field)] {
            if v.unsigned_abs() > MAX_AMOUNT_FEN as u128 * MICRO_PER_FEN as u128 {
                return Err(EventError::new("amount_out_of_range", Some(f)));
            }
            if v < 0 && !correction {
                return Err(EventError::new("negative_amount", Some(f)));
            }
        }
        // A discount is never negative: what was charged cannot exceed the list price (M2.2).
        if !correction && charged_micro > list_micro {
            return Err(EventError::new("charged_above_list", Some(charged_field)));
        }
        let (list, charged) = (ExactFen::from_micro(list_micro), ExactFen::from_micro(charged_micro));
        let (list_fen, charged_fen) = (list.fen, charged.fen);
        // A cooperation payment's quantity is its amount in fen (M2.4).
        if kind == "cooperation.payment" && charged_fen != quantity {
            return Err(EventError::new("amount_mismatch", Some("charged_amount_fen")));
        }
        let price_version = self.price_version.as_deref().map(str::trim).unwrap_or("").to_string();
        if price_version.len() > MAX_ID_LEN {
            return Err(EventError::new("invalid_identifier", Some("price_version")));
        }
        if (list_micro != 0 || charged_micro != 0) && price_version.is_empty() && kind != "cooperation.payment" {
            return Err(EventError::new("price_version_required", Some("price_version")));
        }
        let occurred = self
            .occurred_at
            .as_deref()
            .ok_or_else(|| EventError::new("required", Some("occurred_at")))?;
        let occurred_at_ms = chrono::DateTime::parse_from_rfc3339(occurred)
            .map_err(|_| EventError::new("invalid_time", Some("occurred_at")))?
            .timestamp_millis();
        if occurred_at_ms > now_ms + MAX_FUTURE_SKEW_MS {
            return Err(EventError::new("occurred_in_future", Some("occurred_at")));
        }
        if occurred_at_ms < 0 {
            return Err(EventError::new("invalid_time", Some("occurred_at")));
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(EventError::new("attributes_too_large", Some("attributes")));
        }
        let attr_bytes: usize = self.attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
        if attr_bytes > MAX_ATTRIBUTES_BYTES {
            return Err(EventError::new("attributes_too_large", Some("attributes")));
        }
        if self.attributes.keys().any(|k| !id_ok(k)) {
            return Err(EventError::new("invalid_identifier", Some("attributes")));
        }
        let (corrects, reason, requested, approved) = if correction {
            let Some(target) = self.corrects_leaf_index.filter(|i| *i >= 0) else {
                return Err(EventError::new("required", Some("corrects_leaf_index")));
            };
            let reason = self.correction_reason.as_deref().map(str::trim).unwrap_or("");
            if reason.is_empty() || reason.len() > 1000 {
                return Err(EventError::new("required", Some("correction_reason")));
            }
            let requested = requested_by.unwrap_or("").to_string();
            let approved = self.approved_by.as_deref().map(str::trim).unwrap_or("").to_string();
            if approved.is_empty() {
                return Err(EventError::new("required", Some("approved_by")));
            }
            // Corrections need two people: whoever asks may not approve.
            if approved == requested {
                return Err(EventError::new("approver_is_requester", Some("approved_by")));
            }
            (Some(target), Some(reason.to_string()), Some(requested), Some(approved))
        } else {
            if self.corrects_leaf_index.is_some() {
                return Err(EventError::new("correction_fields_on_plain_event", Some("corrects_leaf_index")));
            }
            (None, None, None, None)
        };
        Ok(NewEvent {
            source: source.to_string(),
            source_event_id,
            kind,
            subject,
            counterparty,
            quantity,
            unit,
            list_fen,
            charged_fen,
            list_sub_micro: list.sub_micro,
            charged_sub_micro: charged.sub_micro,
            price_version,
            occurred_at_ms,
            origin,
            attributes: self.attributes.clone(),
            corrects_leaf_index: corrects,
            correction_reason: reason,
            requested_by: requested,
            approved_by: approved,
        })
    }
}

/// What the source said, in a fixed field order (struct order = byte order): the input of
/// the content hash.
#[derive(Serialize)]
struct Content<'a> {
    v: u8,
    source: &'a str,
    source_event_id: &'a str,
    kind: &'a str,
    subject: &'a str,
    counterparty: &'a str,
    quantity: i64,
    unit: &'a str,
    list_fen: i64,
    charged_fen: i64,
    /// Written only when not 0, so whole-fen events (and every event stored before exact
    /// amounts) keep their bytes and hashes.
    #[serde(skip_serializing_if = "is_zero")]
    list_sub_micro: i64,
    #[serde(skip_serializing_if = "is_zero")]
    charged_sub_micro: i64,
    price_version: &'a str,
    occurred_at_ms: i64,
    origin: &'a str,
    attributes: &'a BTreeMap<String, String>,
    corrects_leaf_index: Option<i64>,
    correction_reason: Option<&'a str>,
    requested_by: Option<&'a str>,
    approved_by: Option<&'a str>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl NewEvent {
    /// The exact list and charged amounts.
    pub fn list_exact(&self) -> opchub_domain::ExactFen {
        opchub_domain::ExactFen {
            fen: self.list_fen,
            sub_micro: self.list_sub_micro,
        }
    }
    pub fn charged_exact(&self) -> opchub_domain::ExactFen {
        opchub_domain::ExactFen {
            fen: self.charged_fen,
            sub_micro: self.charged_sub_micro,
        }
    }

    fn content(&self) -> Content<'_> {
        Content {
            v: 1,
            source: &self.source,
            source_event_id: &self.source_event_id,
            kind: &self.kind,
            subject: &self.subject,
            counterparty: &self.counterparty,
            quantity: self.quantity,
            unit: &self.unit,
            list_fen: self.list_fen,
            charged_fen: self.charged_fen,
            list_sub_micro: self.list_sub_micro,
            charged_sub_micro: self.charged_sub_micro,
            price_version: &self.price_version,
            occurred_at_ms: self.occurred_at_ms,
            origin: self.origin.as_str(),
            attributes: &self.attributes,
            corrects_leaf_index: self.corrects_leaf_index,
            correction_reason: self.correction_reason.as_deref(),
            requested_by: self.requested_by.as_deref(),
            approved_by: self.approved_by.as_deref(),
        }
    }

    /// Hash of what the source said (not of when or where it was booked): the same event
    /// sent twice has the same content hash; a different event under the same key does not.
    pub fn content_hash(&self) -> String {
        content_hash_of(&self.content_json())
    }

    /// The canonical JSON of what the source said: the input of the content hash, and the
    /// `content` member of the leaf. Serialise it once and pass it to [`content_hash_of`]
    /// and [`leaf_bytes`].
    pub fn content_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.content()).unwrap_or_default()
    }
}

/// The content hash (lower-case hex SHA-256) of [`NewEvent::content_json`].
pub fn content_hash_of(content_json: &[u8]) -> String {
    crate::merkle::hash_hex(&Sha256::digest(content_json).into())
}

/// Where and when an event was booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub leaf_index: i64,
    pub received_at_ms: i64,
    /// `YYYY-MM` in Asia/Shanghai.
    pub period: String,
    /// The event's own month was sealed when it arrived; it is booked into `period`.
    pub late: bool,
}

/// The canonical bytes of a stored event: the Merkle leaf. Struct fields serialise in
/// declaration order and attributes are a sorted map, so equal events give equal bytes.
/// `content_hash` must be `e.content_hash()` (passed in so it is computed once).
pub fn canonical_bytes(e: &NewEvent, b: &Booking, content_hash: &str) -> Vec<u8> {
    leaf_bytes(&e.content_json(), b, content_hash)
}

/// [`canonical_bytes`] from an already serialised [`NewEvent::content_json`]: the JSON object
/// `{"v":1,"leaf_index":…,"received_at_ms":…,"period":…,"late":…,"content_hash":…,"content":{…}}`
/// in exactly this member order and without whitespace (what serde_json writes for a struct
/// with these fields; a test holds the two equal).
pub fn leaf_bytes(content_json: &[u8], b: &Booking, content_hash: &str) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
    let mut out = Vec::with_capacity(content_json.len() + 96 + content_hash.len() + b.period.len());
    out.extend_from_slice(b"{\"v\":1,\"leaf_index\":");
    out.extend_from_slice(b.leaf_index.to_string().as_bytes());
    out.extend_from_slice(b",\"received_at_ms\":");
    out.extend_from_slice(b.received_at_ms.to_string().as_bytes());
    out.extend_from_slice(b",\"period\":");
    string(&mut out, &b.period);
    out.extend_from_slice(if b.late { b",\"late\":true" } else { b",\"late\":false" });
    out.extend_from_slice(b",\"content_hash\":");
    string(&mut out, content_hash);
    out.extend_from_slice(b",\"content\":");
    out.extend_from_slice(content_json);
    out.push(b'}');
    out
}

/// Shanghai time is UTC+8 all year (no daylight saving).
const SHANGHAI_OFFSET_S: i32 = 8 * 3600;

fn shanghai(ms: i64) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let off = chrono::FixedOffset::east_opt(SHANGHAI_OFFSET_S)?;
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.with_timezone(&off))
}

/// `YYYY-MM` of an instant in Asia/Shanghai.
pub fn period_of(ms: i64) -> String {
    shanghai(ms)
        .map(|d| d.format("%Y-%m").to_string())
        .unwrap_or_else(|| "1970-01".into())
}

/// `YYYY-MM-DD` of an instant in Asia/Shanghai.
pub fn day_of(ms: i64) -> String {
    shanghai(ms)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

/// Validates a `YYYY-MM` period.
pub fn parse_period(p: &str) -> Option<String> {
    let (y, m) = p.split_once('-')?;
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    (p.len() == 7 && (2000..=2200).contains(&y) && (1..=12).contains(&m)).then(|| format!("{y:04}-{m:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> EventInput {
        EventInput {
            source_event_id: Some("req-1".into()),
            kind: Some("token.output".into()),
            subject: Some("opc-1".into()),
            counterparty: Some("operator-1".into()),
            quantity: Some(1200),
            unit: Some("token".into()),
            list_amount_fen: Some(240),
            charged_amount_fen: Some(120),
            price_version: Some("2026-11".into()),
            occurred_at: Some("2026-11-28T10:00:00+08:00".into()),
            ..Default::default()
        }
    }

    const NOW: i64 = 1_800_000_000_000; // 2027-01-15

    fn code(i: EventInput) -> String {
        i.validate("gateway", Origin::Observed, None, NOW).unwrap_err().code
    }

    /// Issue 17 item 6: a source reports usage worth less than a fen exactly, in millionths of
    /// a fen; the event keeps the rounded fen and what the rounding left. Both units for one
    /// amount, micro-fen for a cooperation payment, or charged above list are refused.
    #[test]
    fn source_reported_amounts_may_be_exact_to_a_millionth_of_a_fen() {
        let mut i = input();
        i.kind = Some("data.byte".into());
        i.unit = Some("byte".into());
        i.list_amount_fen = None;
        i.charged_amount_fen = None;
        i.list_amount_micro_fen = Some(400_000);
        i.charged_amount_micro_fen = Some(1_500_000);
        assert_eq!(code(i.clone()), "charged_above_list");
        i.charged_amount_micro_fen = Some(100_000);
        let e = i.validate("src", Origin::Reported, None, NOW).unwrap();
        assert_eq!(
            (e.list_fen, e.list_sub_micro, e.charged_fen, e.charged_sub_micro),
            (0, 400_000, 0, 100_000)
        );
        i.list_amount_micro_fen = Some(2_600_000);
        let e = i.validate("src", Origin::Reported, None, NOW).unwrap();
        assert_eq!((e.list_fen, e.list_sub_micro), (3, -400_000));
        let mut twice = i.clone();
        twice.list_amount_fen = Some(3);
        let err = twice.validate("src", Origin::Reported, None, NOW).unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.field.as_deref()),
            ("amount_given_twice", Some("list_amount_micro_fen"))
        );
        let mut negative = i.clone();
        negative.charged_amount_micro_fen = Some(-1);
        assert_eq!(code(negative), "negative_amount");
        let mut coop = i.clone();
        coop.kind = Some("cooperation.payment".into());
        coop.unit = Some("fen".into());
        coop.quantity = Some(3);
        let err = coop.validate("src", Origin::Reported, None, NOW).unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.field.as_deref()),
            ("whole_fen_only", Some("list_amount_micro_fen"))
        );
        // Whole-fen input is stored as before: no remainder, so its bytes and hash are unchanged.
        let e = input().validate("gateway", Origin::Observed, None, NOW).unwrap();
        assert_eq!((e.list_fen, e.list_sub_micro, e.charged_fen, e.charged_sub_micro), (240, 0, 120, 0));
    }

    #[test]
    fn valid_event_passes_and_its_hash_ignores_booking() {
        let e = input().validate("gateway", Origin::Observed, None, NOW).unwrap();
        assert_eq!(e.quantity, 1200);
        let b1 = Booking {
            leaf_index: 0,
            received_at_ms: 1,
            period: "2026-11".into(),
            late: false,
        };
        let b2 = Booking {
            leaf_index: 5,
            ..b1.clone()
        };
        let ch = e.content_hash();
        assert_ne!(canonical_bytes(&e, &b1, &ch), canonical_bytes(&e, &b2, &ch));
        assert!(String::from_utf8(canonical_bytes(&e, &b1, &ch))
            .unwrap()
            .starts_with(r#"{"v":1,"leaf_index":0,"#));
        let again = input().validate("gateway", Origin::Observed, None, NOW).unwrap();
        assert_eq!(e.content_hash(), again.content_hash());
        let mut other = input();
        other.quantity = Some(1201);
        assert_ne!(
            e.content_hash(),
            other.validate("gateway", Origin::Observed, None, NOW).unwrap().content_hash()
        );
    }

    /// The leaf as serde_json writes it for a struct: the reference [`leaf_bytes`] must match.
    #[derive(Serialize)]
    struct ReferenceLeaf<'a> {
        v: u8,
        leaf_index: i64,
        received_at_ms: i64,
        period: &'a str,
        late: bool,
        content_hash: &'a str,
        content: Content<'a>,
    }

    proptest::proptest! {
        #[test]
        fn leaf_bytes_equal_the_serde_struct(
            leaf_index in proptest::prelude::any::<i64>(),
            received in proptest::prelude::any::<i64>(),
            late in proptest::prelude::any::<bool>(),
            period in "\\PC{0,8}",
            subject in "\\PC{0,12}",
            attr in "[\"\\\\a-z\u{4e00}\n]{0,6}",
            quantity in proptest::prelude::any::<i64>(),
        ) {
            let mut e = input().validate("gateway", Origin::Observed, None, NOW).unwrap();
            e.subject = subject;
            e.quantity = quantity;
            e.attributes.insert("note".into(), attr);
            let b = Booking { leaf_index, received_at_ms: received, period, late };
            let ch = e.content_hash();
            let reference = serde_json::to_vec(&ReferenceLeaf {
                v: 1,
                leaf_index,
                received_at_ms: received,
                period: &b.period,
                late,
                content_hash: &ch,
                content: e.content(),
            })
            .unwrap();
            proptest::prop_assert_eq!(canonical_bytes(&e, &b, &ch), reference.clone());
            proptest::prop_assert_eq!(leaf_bytes(&e.content_json(), &b, &ch), reference);
            proptest::prop_assert_eq!(ch, hex::encode(Sha256::digest(e.content_json())));
        }
    }

    #[test]
    fn bad_events_are_named() {
        let mut i = input();
        i.quantity = Some(-1);
        assert_eq!(code(i), "negative_quantity");
        let mut i = input();
        i.quantity = Some(i64::MAX);
        assert_eq!(code(i), "quantity_out_of_range");
        let mut i = input();
        i.kind = Some("token.magic".into());
        assert_eq!(code(i), "unknown_kind");
        let mut i = input();
        i.unit = Some("byte".into());
        assert_eq!(code(i), "unit_mismatch");
        let mut i = input();
        i.charged_amount_fen = Some(241);
        assert_eq!(code(i), "charged_above_list");
        let mut i = input();
        i.occurred_at = Some("2099-01-01T00:00:00Z".into());
        assert_eq!(code(i), "occurred_in_future");
        let mut i = input();
        i.attributes = (0..20).map(|n| (format!("k{n}"), "v".to_string())).collect();
        assert_eq!(code(i), "attributes_too_large");
        let mut i = input();
        i.attributes.insert("big".into(), "x".repeat(3000));
        assert_eq!(code(i), "attributes_too_large");
        let mut i = input();
        i.source_event_id = None;
        assert_eq!(code(i), "required");
    }

    #[test]
    fn corrections_need_a_reason_and_a_different_approver() {
        let mut i = input();
        i.quantity = Some(-200);
        i.list_amount_fen = Some(-40);
        i.charged_amount_fen = Some(-20);
        i.corrects_leaf_index = Some(3);
        i.correction_reason = Some("重复计量".into());
        i.approved_by = Some("alice".into());
        assert_eq!(
            i.validate("gateway", Origin::Correction, Some("alice"), NOW).unwrap_err().code,
            "approver_is_requester"
        );
        let e = i.validate("gateway", Origin::Correction, Some("bob"), NOW).unwrap();
        assert_eq!(e.corrects_leaf_index, Some(3));
        i.correction_reason = None;
        assert_eq!(
            i.validate("gateway", Origin::Correction, Some("bob"), NOW)
                .unwrap_err()
                .field
                .as_deref(),
            Some("correction_reason")
        );
    }

    #[test]
    fn periods_are_shanghai_months() {
        // 2026-12-31T16:30Z is already 2027-01-01 00:30 in Shanghai.
        let ms = chrono::DateTime::parse_from_rfc3339("2026-12-31T16:30:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(period_of(ms), "2027-01");
        assert_eq!(day_of(ms), "2027-01-01");
        assert_eq!(parse_period("2027-01").as_deref(), Some("2027-01"));
        assert_eq!(parse_period("2027-13"), None);
        assert_eq!(parse_period("27-01"), None);
    }
}
