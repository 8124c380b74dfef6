//! Facts: what the engine is told about a beneficiary, in three states (known, known absent,
//! unknown), and the typed readers clause rules use. Owns the JSON/TOML input formats
//! (documented in policy/README.md); it never guesses a value that was not given.

use crate::error::PolicyError;
use chrono::NaiveDate;
use opchub_domain::Role;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// A fact's state. In the input: a missing key or the string `"unknown"` is `Unknown`; JSON `null`
/// or the string `"absent"` is `Absent` ("known: there is none" — no list entries, no amount,
/// the flag does not apply, no such date); anything else is `Known`.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact<T> {
    Known(T),
    Absent,
    Unknown,
}

/// Who the decision is for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Beneficiary {
    pub id: String,
    pub role: Role,
}

/// The facts of one evaluation, keyed by fact name.
#[derive(Debug, Default)]
pub struct Facts {
    values: BTreeMap<String, Value>,
    read: RefCell<BTreeSet<String>>,
    /// While one project of a `projects` list is evaluated: its facts (read first, falling back
    /// to the top-level ones), its prefix (`projects[1]`) and which of its facts were read.
    scope: RefCell<Option<Scope>>,
}

#[derive(Debug)]
struct Scope {
    prefix: String,
    values: Map<String, Value>,
    read: BTreeSet<String>,
}

/// A dated (or monthly) entry of a list fact: usage, spend, fees, interest.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `facts.rd_spend[2]`: how errors and traces name it.
    pub field: String,
    pub id: Option<String>,
    pub date: Option<NaiveDate>,
    /// First day of the month, for monthly entries.
    pub month: Option<NaiveDate>,
    pub amount_fen: Option<i64>,
    /// An exact amount finer than the fen, in millionths of a fen (metered usage: issue 17
    /// item 6); read instead of `amount_fen` where amounts are added up.
    pub amount_micro_fen: Option<i64>,
    pub quantity: Option<i64>,
    pub qualified: Fact<bool>,
    pub note: Option<String>,
    /// Any further keys (e.g. a loan's `interest` list), read by the rule that needs them.
    pub extra: Map<String, Value>,
}

/// The whole input of `opchub policy eval --facts FILE`.
#[derive(Debug)]
pub struct EvalInput {
    pub beneficiary: Beneficiary,
    pub year: i32,
    pub as_of: Option<NaiveDate>,
    pub facts: Facts,
}

impl EvalInput {
    /// `{"beneficiary": {"id", "role"}, "year": 2027, "as_of": "2027-03-01", "facts": {…}}`;
    /// `as_of` is optional (the CLI's `--as-of` wins).
    pub fn from_json(text: &str) -> Result<EvalInput, PolicyError> {
        let v: Value = serde_json::from_str(text).map_err(|e| PolicyError::bad("facts file", format!("malformed JSON: {e}")))?;
        let Value::Object(mut top) = v else {
            return Err(PolicyError::bad("facts file", "expected a JSON object"));
        };
        for key in top.keys() {
            if !["beneficiary", "year", "as_of", "facts"].contains(&key.as_str()) {
                return Err(PolicyError::bad(
                    key.clone(),
                    "unknown key (expected beneficiary, year, as_of, facts)",
                ));
            }
        }
        let beneficiary = match top.remove("beneficiary") {
            Some(b) => beneficiary_from_json(b)?,
            None => {
                return Err(PolicyError::bad(
                    "beneficiary",
                    "required: {\"id\": \"…\", \"role\": \"opc_founder\"}",
                ))
            }
        };
        let year = match top.get("year") {
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(|y| i32::try_from(y).ok())
                .ok_or_else(|| PolicyError::bad("year", format!("expected a calendar year, got {n}")))?,
            Some(other) => return Err(PolicyError::bad("year", format!("expected a calendar year, got {other}"))),
            None => return Err(PolicyError::bad("year", "required: the calendar year evaluated, e.g. 2027")),
        };
        let as_of = match top.get("as_of") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                Some(parse_date(s).ok_or_else(|| PolicyError::bad("as_of", format!("expected YYYY-MM-DD, got {s:?}")))?)
            }
            Some(other) => return Err(PolicyError::bad("as_of", format!("expected YYYY-MM-DD, got {other}"))),
        };
        let facts = match top.remove("facts") {
            Some(Value::Object(map)) => Facts::from_map(map),
            Some(_) => return Err(PolicyError::bad("facts", "expected an object of fact name → value")),
            None => Facts::default(),
        };
        Ok(EvalInput {
            beneficiary,
            year,
            as_of,
            facts,
        })
    }
}

fn beneficiary_from_json(v: Value) -> Result<Beneficiary, PolicyError> {
    let Value::Object(map) = v else {
        return Err(PolicyError::bad("beneficiary", "expected {\"id\": \"…\", \"role\": \"…\"}"));
    };
    let mut id = None;
    let mut role = None;
    for (k, v) in map {
        match (k.as_str(), v) {
            ("id", Value::String(s)) if !s.trim().is_empty() => id = Some(s),
            ("role", Value::String(s)) => role = Some(s.parse::<Role>().map_err(|e| PolicyError::bad("beneficiary.role", e.to_string()))?),
            ("id", _) => return Err(PolicyError::bad("beneficiary.id", "expected a non-empty string")),
            ("role", other) => return Err(PolicyError::bad("beneficiary.role", format!("expected a role name, got {other}"))),
            (other, _) => return Err(PolicyError::bad(format!("beneficiary.{other}"), "unknown key (expected id, role)")),
        }
    }
    Ok(Beneficiary {
        id: id.ok_or_else(|| PolicyError::bad("beneficiary.id", "required"))?,
        role: role.ok_or_else(|| PolicyError::bad("beneficiary.role", "required"))?,
    })
}

pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().filter(|_| s.len() == 10)
}

fn parse_month(s: &str) -> Option<NaiveDate> {
    if s.len() != 7 {
        return None;
    }
    parse_date(&format!("{s}-01"))
}

/// TOML → JSON value; dates become `YYYY-MM-DD` strings so both formats read the same.
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
    }
}

fn state(v: Option<&Value>) -> Fact<&Value> {
    match v {
        None => Fact::Unknown,
        Some(Value::String(s)) if s == "unknown" => Fact::Unknown,
        Some(Value::Null) => Fact::Absent,
        Some(Value::String(s)) if s == "absent" => Fact::Absent,
        Some(v) => Fact::Known(v),
    }
}

fn money(v: &Value, field: &str) -> Result<i64, PolicyError> {
    match v.as_i64() {
        Some(n) if n < 0 => Err(PolicyError::bad(field, format!("must not be negative (got {n})"))),
        Some(n) => Ok(n),
        None => Err(PolicyError::bad(field, format!("expected a whole number of fen, got {v}"))),
    }
}

fn boolean(v: Option<&Value>, field: &str) -> Result<Fact<bool>, PolicyError> {
    match state(v) {
        Fact::Unknown => Ok(Fact::Unknown),
        Fact::Absent => Ok(Fact::Absent),
        Fact::Known(Value::Bool(b)) => Ok(Fact::Known(*b)),
        Fact::Known(other) => Err(PolicyError::bad(
            field,
            format!("expected true, false, null or \"unknown\", got {other}"),
        )),
    }
}

impl Facts {
    pub fn from_map(map: Map<String, Value>) -> Facts {
        Facts {
            values: map.into_iter().collect(),
            read: RefCell::new(BTreeSet::new()),
            scope: RefCell::new(None),
        }
    }

    /// The raw `projects` list (M3.1, M3.2, M3.3, M6.1: one facts file may carry several
    /// projects, each capped on its own): `Known` objects, in order.
    pub fn projects(&self) -> Result<Fact<Vec<Map<String, Value>>>, PolicyError> {
        match state(self.values.get("projects")) {
            Fact::Unknown => Ok(Fact::Unknown),
            Fact::Absent => {
                self.read.borrow_mut().insert("projects".into());
                Ok(Fact::Absent)
            }
            Fact::Known(Value::Array(items)) => {
                self.read.borrow_mut().insert("projects".into());
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::Object(m) => Ok(m.clone()),
                        other => Err(PolicyError::bad(
                            format!("facts.projects[{i}]"),
                            format!("expected an object of the project's facts, got {other}"),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Fact::Known)
            }
            Fact::Known(other) => Err(PolicyError::bad(
                "facts.projects",
                format!("expected a list of projects (objects with project_id and the project's facts), got {other}"),
            )),
        }
    }

    /// Reads the facts of one project first (until `leave_project`); other names fall back to
    /// the top-level facts.
    pub fn enter_project(&self, prefix: &str, values: Map<String, Value>) {
        *self.scope.borrow_mut() = Some(Scope {
            prefix: prefix.to_string(),
            values,
            read: BTreeSet::new(),
        });
    }

    /// Ends the project scope; returns the project's facts no step read (`projects[1].x`).
    pub fn leave_project(&self) -> Vec<String> {
        match self.scope.borrow_mut().take() {
            Some(s) => s
                .values
                .keys()
                .filter(|k| !s.read.contains(*k))
                .map(|k| format!("{}.{k}", s.prefix))
                .collect(),
            None => Vec::new(),
        }
    }

    /// `facts.rd_spend`, or `facts.projects[1].rd_spend` while a project's own fact is read.
    fn field(&self, name: &str) -> String {
        match &*self.scope.borrow() {
            Some(s) if s.values.contains_key(name) => format!("facts.{}.{name}", s.prefix),
            _ => format!("facts.{name}"),
        }
    }

    /// Facts from a JSON object text.
    pub fn from_json(text: &str) -> Result<Facts, PolicyError> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(Facts::from_map(map)),
            Ok(_) => Err(PolicyError::bad("facts", "expected an object of fact name → value")),
            Err(e) => Err(PolicyError::bad("facts", format!("malformed JSON: {e}"))),
        }
    }

    /// Facts from a TOML table (test cases); dates may be TOML dates or strings.
    pub fn from_toml(table: &toml::Table) -> Facts {
        Facts::from_map(table.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect())
    }

    pub fn set(&mut self, name: &str, value: Value) {
        self.values.insert(name.to_string(), value);
    }

    fn raw(&self, name: &str) -> Option<Value> {
        if let Some(s) = self.scope.borrow_mut().as_mut() {
            if let Some(v) = s.values.get(name) {
                s.read.insert(name.to_string());
                return Some(v.clone());
            }
        }
        self.read.borrow_mut().insert(name.to_string());
        self.values.get(name).cloned()
    }

    /// The input value as given, for the trace (the fact counts as read).
    pub fn shown(&self, name: &str) -> String {
        match self.raw(name) {
            None => "unknown (not given)".into(),
            Some(Value::String(s)) => s,
            Some(v) => v.to_string(),
        }
    }

    /// Facts that were given but no step read (probably a typo).
    pub fn unread(&self) -> Vec<String> {
        let read = self.read.borrow();
        self.values.keys().filter(|k| !read.contains(*k)).cloned().collect()
    }

    pub fn flag(&self, name: &str) -> Result<Fact<bool>, PolicyError> {
        boolean(self.raw(name).as_ref(), &self.field(name))
    }

    pub fn text(&self, name: &str) -> Result<Fact<String>, PolicyError> {
        match state(self.raw(name).as_ref()) {
            Fact::Unknown => Ok(Fact::Unknown),
            Fact::Absent => Ok(Fact::Absent),
            Fact::Known(Value::String(s)) => Ok(Fact::Known(s.clone())),
            Fact::Known(other) => Err(PolicyError::bad(self.field(name), format!("expected a string, got {other}"))),
        }
    }

    /// A whole number of fen, never negative.
    pub fn fen(&self, name: &str) -> Result<Fact<i64>, PolicyError> {
        match state(self.raw(name).as_ref()) {
            Fact::Unknown => Ok(Fact::Unknown),
            Fact::Absent => Ok(Fact::Absent),
            Fact::Known(v) => Ok(Fact::Known(money(v, &self.field(name))?)),
        }
    }

    pub fn date(&self, name: &str) -> Result<Fact<NaiveDate>, PolicyError> {
        match state(self.raw(name).as_ref()) {
            Fact::Unknown => Ok(Fact::Unknown),
            Fact::Absent => Ok(Fact::Absent),
            Fact::Known(Value::String(s)) => parse_date(s)
                .map(Fact::Known)
                .ok_or_else(|| PolicyError::bad(self.field(name), format!("expected a date YYYY-MM-DD, got {s:?}"))),
            Fact::Known(other) => Err(PolicyError::bad(
                self.field(name),
                format!("expected a date YYYY-MM-DD, got {other}"),
            )),
        }
    }

    /// A ratio written as a decimal string (`"0.85"`) or a JSON number.
    pub fn ratio(&self, name: &str) -> Result<Fact<Decimal>, PolicyError> {
        let field = self.field(name);
        match state(self.raw(name).as_ref()) {
            Fact::Unknown => Ok(Fact::Unknown),
            Fact::Absent => Ok(Fact::Absent),
            Fact::Known(v) => {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => return Err(PolicyError::bad(field, format!("expected a decimal like \"0.85\", got {other}"))),
                };
                Decimal::from_str(&text)
                    .map(Fact::Known)
                    .map_err(|_| PolicyError::bad(field, format!("expected a decimal like \"0.85\", got {text:?}")))
            }
        }
    }

    /// A list of entries (see `Entry`).
    pub fn entries(&self, name: &str) -> Result<Fact<Vec<Entry>>, PolicyError> {
        let field = self.field(name);
        match state(self.raw(name).as_ref()) {
            Fact::Unknown => Ok(Fact::Unknown),
            Fact::Absent => Ok(Fact::Absent),
            Fact::Known(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| entry(v, &format!("{field}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Fact::Known),
            Fact::Known(other) => Err(PolicyError::bad(field, format!("expected a list of entries, got {other}"))),
        }
    }
}

/// Reads one entry object; every value is checked here so rules see clean types.
pub(crate) fn entry(v: &Value, field: &str) -> Result<Entry, PolicyError> {
    let Value::Object(map) = v else {
        return Err(PolicyError::bad(field, format!("expected an object, got {v}")));
    };
    let mut e = Entry {
        field: field.to_string(),
        id: None,
        date: None,
        month: None,
        amount_fen: None,
        amount_micro_fen: None,
        quantity: None,
        qualified: Fact::Unknown,
        note: None,
        extra: Map::new(),
    };
    for (k, v) in map {
        let f = format!("{field}.{k}");
        match k.as_str() {
            "id" | "policy" | "note" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| PolicyError::bad(&f, format!("expected a string, got {v}")))?;
                if k == "note" {
                    e.note = Some(s.to_string());
                } else {
                    e.id = Some(s.to_string());
                }
            }
            "date" => {
                let s = v.as_str().unwrap_or_default();
                e.date = Some(parse_date(s).ok_or_else(|| PolicyError::bad(&f, format!("expected a date YYYY-MM-DD, got {v}")))?);
            }
            "month" => {
                let s = v.as_str().unwrap_or_default();
                e.month = Some(parse_month(s).ok_or_else(|| PolicyError::bad(&f, format!("expected a month YYYY-MM, got {v}")))?);
            }
            "amount_fen" => e.amount_fen = Some(money(v, &f)?),
            "amount_micro_fen" => {
                e.amount_micro_fen = Some(v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                    PolicyError::bad(
                        &f,
                        format!("expected a whole number of millionths of a fen that is not negative, got {v}"),
                    )
                })?)
            }
            "quantity" => match v.as_i64() {
                Some(n) if n >= 0 => e.quantity = Some(n),
                _ => {
                    return Err(PolicyError::bad(
                        &f,
                        format!("expected a whole number that is not negative, got {v}"),
                    ))
                }
            },
            "qualified" => e.qualified = boolean(Some(v), &f)?,
            _ => {
                e.extra.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_states_are_distinct() {
        let f = Facts::from_json(r#"{"a": true, "b": null, "c": "unknown", "d": "absent"}"#).unwrap();
        assert_eq!(f.flag("a").unwrap(), Fact::Known(true));
        assert_eq!(f.flag("b").unwrap(), Fact::Absent);
        assert_eq!(f.flag("c").unwrap(), Fact::Unknown);
        assert_eq!(f.flag("d").unwrap(), Fact::Absent);
        assert_eq!(f.flag("zzz").unwrap(), Fact::Unknown);
    }

    #[test]
    fn negative_money_names_the_field() {
        let f = Facts::from_json(r#"{"rd_spend": [{"date": "2027-01-01", "amount_fen": -5, "qualified": true}]}"#).unwrap();
        let err = f.entries("rd_spend").unwrap_err();
        assert_eq!(err.field(), Some("facts.rd_spend[0].amount_fen"));
        assert!(err.to_string().contains("negative"));
    }

    #[test]
    fn eval_input_reports_the_bad_field() {
        let err = EvalInput::from_json(r#"{"beneficiary": {"id": "x", "role": "wizard"}, "year": 2027}"#).unwrap_err();
        assert_eq!(err.field(), Some("beneficiary.role"));
        let err = EvalInput::from_json("{ not json").unwrap_err();
        assert!(err.to_string().contains("malformed JSON"));
        let err = EvalInput::from_json(r#"{"beneficiary": {"id": "x", "role": "opc_founder"}}"#).unwrap_err();
        assert_eq!(err.field(), Some("year"));
    }
}
