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
    /// A new password for the account `username`, by [`password_problem`]'s policy.
    pub fn password(&mut self, field: &str, v: Option<&str>, username: &str) -> String {
        let t = v.unwrap_or("").to_string();
        if let Some(code) = password_problem(&t, username) {
            self.fail(field, code);
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

    /// A founder's, beneficial owner's or controlling person's resident ID number (GB 11643,
    /// issue 18 item 1): `required` or [`crate::ResidentId::parse`]'s code.
    pub fn resident_id(&mut self, field: &str, v: Option<&str>) -> Option<crate::ResidentId> {
        match v.map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                self.fail(field, "required");
                None
            }
            Some(s) => crate::ResidentId::parse(s).map_err(|code| self.fail(field, code)).ok(),
        }
    }

    /// An optional mainland mobile number ([`crate::MobilePhone::parse`]'s codes).
    pub fn mobile_phone(&mut self, field: &str, v: Option<&str>) -> Option<crate::MobilePhone> {
        let s = v.map(str::trim).filter(|s| !s.is_empty())?;
        crate::MobilePhone::parse(s).map_err(|code| self.fail(field, code)).ok()
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
        c.password("password", Some("short"), "badname");
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

/// The shortest password accepted (characters).
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Passwords of at least [`MIN_PASSWORD_CHARS`] characters that are among the first tried by
/// anyone guessing (leaked-password top lists, keyboard walks, the Chinese favourites); compared
/// without regard to case.
const COMMON_PASSWORDS: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789a",
    "1234567890a",
    "123456789abc",
    "0987654321",
    "9876543210",
    "1111111111",
    "0000000000",
    "1122334455",
    "1234512345",
    "123123123123",
    "qwertyuiop",
    "qwerty12345",
    "qwerty123456",
    "qwertyuiop123",
    "asdfghjkl1",
    "1q2w3e4r5t",
    "1qaz2wsx3edc",
    "zaq1xsw2cde3",
    "1234qwer!@#$",
    "password123",
    "password1234",
    "password@123",
    "passw0rd123",
    "p@ssw0rd123",
    "p@ssword123",
    "admin123456",
    "administrator",
    "welcome123",
    "letmein123",
    "changeme123",
    "iloveyou123",
    "abcdefghij",
    "abc1234567",
    "abc123456789",
    "a123456789",
    "aa123456789",
    "qq123456789",
    "woaini1314",
    "woaini520",
    "5201314520",
    "1314520520",
    "wodemima123",
    "zhang123456",
    "football123",
    "baseball123",
    "sunshine123",
    "princess123",
];

/// Why `password` may not be the password of `username`, as a field code: empty (`required`),
/// shorter than [`MIN_PASSWORD_CHARS`] (`password_too_short`), longer than 256 bytes
/// (`too_long`), only white space (`password_blank`), a common password (`password_common`) or
/// the username itself (`password_is_username`).
pub fn password_problem(password: &str, username: &str) -> Option<&'static str> {
    let lower = password.trim().to_lowercase();
    if password.is_empty() {
        Some("required")
    } else if password.trim().is_empty() {
        Some("password_blank")
    } else if password.chars().count() < MIN_PASSWORD_CHARS {
        Some("password_too_short")
    } else if password.len() > 256 {
        Some("too_long")
    } else if COMMON_PASSWORDS.contains(&lower.as_str()) {
        Some("password_common")
    } else if !username.trim().is_empty() && lower == username.trim().to_lowercase() {
        Some("password_is_username")
    } else {
        None
    }
}

#[cfg(test)]
mod password_tests {
    use super::password_problem;

    #[test]
    fn the_password_policy_refuses_short_blank_common_and_username_passwords() {
        assert_eq!(password_problem("", "alice"), Some("required"));
        assert_eq!(password_problem("12345678", "alice"), Some("password_too_short"));
        assert_eq!(password_problem("        ", "alice"), Some("password_blank"));
        assert_eq!(password_problem("            ", "alice"), Some("password_blank"));
        assert_eq!(password_problem("Password123", "alice"), Some("password_common"));
        assert_eq!(password_problem("woaini1314", "alice"), Some("password_common"));
        assert_eq!(password_problem("Alice.Founder", "alice.founder"), Some("password_is_username"));
        assert_eq!(password_problem(&"x".repeat(257), "alice"), Some("too_long"));
        // What the demo and the tests use passes.
        assert_eq!(password_problem("opchub-demo", "opc"), None);
        assert_eq!(password_problem("correct-horse-9", "founder"), None);
    }
}
