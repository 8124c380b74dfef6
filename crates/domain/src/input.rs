//! Validation of what users type, field by field. Each check returns a stable error code per
//! field (`required`, `too_long`, `uscc_check_character`, …); the web layer turns codes into
//! messages from its catalogs. Pure: no I/O.

use crate::{Uscc, Zone};
use std::collections::BTreeMap;

/// Field name → error code.
pub type FieldErrors = BTreeMap<String, String>;

pub struct Checker {
    pub errors: FieldErrors,
    /// Field name → a value-specific detail (e.g. the expected USCC check character).
    pub details: FieldErrors,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

impl Checker {
    pub fn new() -> Self {
        Checker {
            errors: BTreeMap::new(),
            details: BTreeMap::new(),
        }
    }

    pub fn fail(&mut self, field: &str, code: &str) {
        self.errors.entry(field.to_string()).or_insert_with(|| code.to_string());
    }

    /// Trimmed text of 1..=max characters.
    pub fn text(&mut self, field: &str, v: Option<&str>, min: usize, max: usize) -> String {
        let t = v.unwrap_or("").trim().to_string();
        let n = t.chars().count();
        if n == 0 {
            self.fail(field, "required");
        } else if n < min {
            self.fail(field, "too_short");
        } else if n > max {
            self.fail(field, "too_long");
        } else if t.chars().any(|c| c.is_control()) {
            self.fail(field, "control_characters");
        }
        t
    }

    /// 3–32 characters of lowercase letters, digits, `_`, `-`, `.`.
    pub fn username(&mut self, field: &str, v: Option<&str>) -> String {
        let t = v.unwrap_or("").trim().to_string();
        if t.is_empty() {
            self.fail(field, "required");
        } else if t.len() < 3
            || t.len() > 32
            || !t
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
        {
            self.fail(field, "invalid_username");
        }
        t
    }

    /// At least 8 characters; not trimmed.
    pub fn password(&mut self, field: &str, v: Option<&str>) -> String {
        let t = v.unwrap_or("").to_string();
        if t.is_empty() {
            self.fail(field, "required");
        } else if t.chars().count() < 8 {
            self.fail(field, "password_too_short");
        } else if t.len() > 256 {
            self.fail(field, "too_long");
        }
        t
    }

    pub fn uscc(&mut self, field: &str, v: Option<&str>) -> Option<Uscc> {
        match v.map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                self.fail(field, "required");
                None
            }
            Some(s) => match Uscc::parse(s) {
                Ok(u) => Some(u),
                Err(e) => {
                    self.fail(field, e.code());
                    if let crate::UsccError::CheckCharacter { expected, found } = e {
                        self.details.insert(field.to_string(), format!("{found} → {expected}"));
                    }
                    None
                }
            },
        }
    }

    /// G2: one of the key zones.
    pub fn zone(&mut self, field: &str, v: Option<&str>) -> Option<Zone> {
        match v.map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                self.fail(field, "required");
                None
            }
            Some(s) => match s.parse::<Zone>() {
                Ok(z) => Some(z),
                Err(_) => {
                    self.fail(field, "unknown_zone");
                    None
                }
            },
        }
    }

    /// An optional GB/T 4754 industry code (F3 matches the restricted-industry catalogue by it).
    pub fn industry_code(&mut self, field: &str, v: Option<&str>) -> Option<crate::IndustryCode> {
        let s = v.map(str::trim).filter(|s| !s.is_empty())?;
        match crate::IndustryCode::parse(s) {
            Ok(c) => Some(c),
            Err(e) => {
                self.fail(field, e.code());
                None
            }
        }
    }

    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_one_code_per_field() {
        let mut c = Checker::new();
        c.text("name", Some("  "), 1, 10);
        c.text("long", Some("一二三四五六"), 1, 5);
        c.username("username", Some("Bad Name"));
        c.password("password", Some("short"));
        c.uscc("uscc", Some("91110000802100433C"));
        c.zone("zone", Some("chaoyang"));
        let e = &c.errors;
        assert_eq!(e["name"], "required");
        assert_eq!(e["long"], "too_long");
        assert_eq!(e["username"], "invalid_username");
        assert_eq!(e["password"], "password_too_short");
        assert_eq!(e["uscc"], "uscc_check_character");
        assert_eq!(e["zone"], "unknown_zone");
    }

    #[test]
    fn good_input_passes() {
        let mut c = Checker::new();
        assert_eq!(c.text("name", Some(" 北京智语科技有限公司 "), 2, 100), "北京智语科技有限公司");
        assert!(c.uscc("uscc", Some("91110000802100433B")).is_some());
        assert_eq!(c.zone("zone", Some("hexi_area")), Some(Zone::HexiArea));
        assert!(c.ok());
    }
}
