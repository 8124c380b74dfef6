//! Who is who (issue 18 item 1): the identity numbers a party's people are recorded by — the
//! resident ID number of a founder, beneficial owner or controlling person (公民身份号码,
//! GB 11643-1999, with its ISO 7064 MOD 11-2 check character) and a mainland mobile number.
//! Both are normalised here so that the same person always hashes to the same value; the
//! platform stores only a keyed hash of them (never the number) and compares hashes to find
//! related parties. Pure: no I/O.

use chrono::NaiveDate;

/// The weights of GB 11643-1999's check character (ISO 7064 MOD 11-2), positions 1–17.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character by `sum mod 11`.
const CHECK: &[u8; 11] = b"10X98765432";

/// A resident ID number, normalised (18 characters, an upper-case `X` check character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentId(String);

impl ResidentId {
    /// Parses a resident ID number: spaces are ignored and a lower-case `x` is read as `X`.
    /// Errors: `id_bad_length` (not 18 characters), `id_bad_characters` (17 digits and a
    /// digit or `X` expected), `id_bad_region` (the address code's province 11–91),
    /// `id_bad_birth_date`, `id_bad_check_character`.
    pub fn parse(s: &str) -> Result<ResidentId, &'static str> {
        let t: String = s.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
        if t.chars().count() != 18 {
            return Err("id_bad_length");
        }
        let b = t.as_bytes();
        if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err("id_bad_characters");
        }
        let province = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
        if !(11..=91).contains(&province) {
            return Err("id_bad_region");
        }
        let birth = NaiveDate::parse_from_str(&t[6..14], "%Y%m%d").map_err(|_| "id_bad_birth_date")?;
        if birth < NaiveDate::from_ymd_opt(1800, 1, 1).unwrap_or(NaiveDate::MIN) {
            return Err("id_bad_birth_date");
        }
        if b[17] != check_character(&t[..17]) {
            return Err("id_bad_check_character");
        }
        Ok(ResidentId(t))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The check character of the first 17 digits (callers pass 17 ASCII digits).
pub fn check_character(first17: &str) -> u8 {
    let sum: u32 = first17.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d.wrapping_sub(b'0')) * w).sum();
    CHECK[(sum % 11) as usize]
}

/// A mainland mobile number, normalised to its 11 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobilePhone(String);

impl MobilePhone {
    /// Parses a mobile number: spaces, `-` and a leading `+86`/`0086`/`86` are ignored.
    /// Errors: `phone_not_digits`, `phone_bad_length` (11 digits), `phone_bad_prefix` (13–19).
    pub fn parse(s: &str) -> Result<MobilePhone, &'static str> {
        let t: String = s.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        let t = t
            .strip_prefix("+86")
            .or_else(|| t.strip_prefix("0086"))
            .or_else(|| if t.len() == 13 { t.strip_prefix("86") } else { None })
            .unwrap_or(&t);
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err("phone_not_digits");
        }
        if t.len() != 11 {
            return Err("phone_bad_length");
        }
        let b = t.as_bytes();
        if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err("phone_bad_prefix");
        }
        Ok(MobilePhone(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The roles a recorded person has for a party (issue 18 item 1).
pub const PERSON_ROLES: [&str; 3] = ["founder", "beneficial_owner", "controlling_person"];

#[cfg(test)]
mod tests {
    use super::*;

    /// GB 11643-1999's own example: 11010519491231002X.
    #[test]
    fn the_standards_example_passes_and_a_wrong_check_character_is_named() {
        assert_eq!(ResidentId::parse("11010519491231002x").unwrap().as_str(), "11010519491231002X");
        assert_eq!(ResidentId::parse("1101 0519 4912 3100 2X").unwrap().as_str(), "11010519491231002X");
        assert_eq!(ResidentId::parse("110105194912310021"), Err("id_bad_check_character"));
        // Another published example with a digit check character.
        assert_eq!(ResidentId::parse("440524188001010014").unwrap().as_str(), "440524188001010014");
    }

    #[test]
    fn malformed_numbers_get_their_own_codes() {
        assert_eq!(ResidentId::parse(""), Err("id_bad_length"));
        assert_eq!(ResidentId::parse("11010519491231002"), Err("id_bad_length"));
        assert_eq!(ResidentId::parse("1101051949123100XX"), Err("id_bad_characters"));
        assert_eq!(ResidentId::parse("01010519491231002X"), Err("id_bad_region"));
        let mut bad_day = String::from("11010519490231001");
        bad_day.push(check_character(&bad_day) as char);
        assert_eq!(ResidentId::parse(&bad_day), Err("id_bad_birth_date"));
    }

    #[test]
    fn every_check_character_is_the_one_that_makes_mod_11_equal_1() {
        // ISO 7064 MOD 11-2: Σ aᵢ·wᵢ over all 18 positions (X = 10, w₁₈ = 1) ≡ 1 (mod 11).
        for n in [110105194912310u64, 440524188001010, 320311770706001, 999999999999999] {
            let first17 = format!("{n:015}19");
            let c = check_character(&first17);
            let v = if c == b'X' { 10 } else { u32::from(c - b'0') };
            let sum: u32 = first17.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum::<u32>() + v;
            assert_eq!(sum % 11, 1, "{first17}");
        }
    }

    #[test]
    fn mobile_numbers_are_normalised_and_checked() {
        assert_eq!(MobilePhone::parse("+86 138-0013-8000").unwrap().as_str(), "13800138000");
        assert_eq!(MobilePhone::parse("8613800138000").unwrap().as_str(), "13800138000");
        assert_eq!(MobilePhone::parse("0086 13800138000").unwrap().as_str(), "13800138000");
        assert_eq!(MobilePhone::parse("1380013800"), Err("phone_bad_length"));
        assert_eq!(MobilePhone::parse("12800138000"), Err("phone_bad_prefix"));
        assert_eq!(MobilePhone::parse("138o0138000"), Err("phone_not_digits"));
        assert_eq!(MobilePhone::parse(""), Err("phone_not_digits"));
    }
}
