//! 统一社会信用代码 (Unified Social Credit Code), GB 32100-2015.
//! 18 characters from a 31-character alphabet (no I, O, Z, S, V); the last one is a check
//! character computed from the first 17 with fixed weights, modulo 31.

use std::fmt;
use std::str::FromStr;

/// The alphabet of GB 32100-2015, in code-value order (value = index).
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights W_i = 3^(i-1) mod 31 for positions 1..=17.
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    #[error("统一社会信用代码应为18位，实际为{0}位 (a USCC has 18 characters, got {0})")]
    Length(usize),
    #[error("第{position}位字符“{ch}”不是统一社会信用代码允许的字符 (character {position} '{ch}' is not allowed in a USCC)")]
    Character { position: usize, ch: char },
    #[error("校验位错误：应为“{expected}”，实际为“{found}” (wrong check character: expected '{expected}', found '{found}')")]
    CheckCharacter { expected: char, found: char },
}

impl UsccError {
    /// Stable machine-readable code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            UsccError::Length(_) => "uscc_length",
            UsccError::Character { .. } => "uscc_character",
            UsccError::CheckCharacter { .. } => "uscc_check_character",
        }
    }
}

/// A validated Unified Social Credit Code. Construct only through [`Uscc::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Uscc(String);

fn value_of(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Computes the check character for the first 17 characters (which must be valid).
pub fn check_character(first17: &str) -> Result<char, UsccError> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 {
        return Err(UsccError::Length(first17.chars().count() + 1));
    }
    let mut sum = 0u32;
    for (i, &b) in bytes.iter().enumerate() {
        let v = value_of(b).ok_or(UsccError::Character {
            position: i + 1,
            ch: b as char,
        })?;
        sum += v * WEIGHTS[i];
    }
    let check = (31 - sum % 31) % 31;
    Ok(ALPHABET[check as usize] as char)
}

impl Uscc {
    /// Parses a USCC. Surrounding whitespace is trimmed and lowercase letters are accepted
    /// (they are normalised to uppercase); everything else must be exact.
    pub fn parse(input: &str) -> Result<Self, UsccError> {
        let s: String = input.trim().to_ascii_uppercase();
        let n = s.chars().count();
        if n != 18 {
            return Err(UsccError::Length(n));
        }
        for (i, ch) in s.chars().enumerate() {
            if !ch.is_ascii() || value_of(ch as u8).is_none() {
                return Err(UsccError::Character { position: i + 1, ch });
            }
        }
        let expected = check_character(&s[..17])?;
        let found = s.as_bytes()[17] as char;
        if expected != found {
            return Err(UsccError::CheckCharacter { expected, found });
        }
        Ok(Uscc(s))
    }

    /// Completes 17 valid characters with their check character (used by demo data and tests).
    pub fn complete(first17: &str) -> Result<Self, UsccError> {
        let c = check_character(first17)?;
        Uscc::parse(&format!("{first17}{c}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Uscc {
    type Err = UsccError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uscc::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for Uscc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Uscc::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_published_codes() {
        // Real codes printed on public business licences.
        for code in ["91110000802100433B", "91350100M000100Y43", "91110108551385082Q"] {
            assert_eq!(Uscc::parse(code).map(|u| u.to_string()), Ok(code.to_string()));
        }
    }

    #[test]
    fn wrong_check_character_is_named() {
        let err = Uscc::parse("91110000802100433C").unwrap_err();
        assert_eq!(err, UsccError::CheckCharacter { expected: 'B', found: 'C' });
        assert!(err.to_string().contains("校验位"));
    }

    #[test]
    fn rejects_forbidden_letters_and_lengths() {
        assert_eq!(Uscc::parse("9111000080210043").unwrap_err(), UsccError::Length(16));
        assert!(matches!(
            Uscc::parse("9111000080210043IB").unwrap_err(),
            UsccError::Character { position: 17, ch: 'I' }
        ));
    }

    #[test]
    fn lowercase_and_spaces_are_normalised() {
        assert_eq!(
            Uscc::parse(" 91110000802100433b ").map(|u| u.to_string()),
            Ok("91110000802100433B".to_string())
        );
    }

    proptest! {
        #[test]
        fn completed_codes_round_trip_and_any_single_change_of_check_is_rejected(
            idx in proptest::collection::vec(0usize..31, 17), other in 0usize..31
        ) {
            let first: String = idx.iter().map(|&i| ALPHABET[i] as char).collect();
            let u = Uscc::complete(&first).unwrap();
            prop_assert_eq!(Uscc::parse(u.as_str()).unwrap(), u.clone());
            let check = u.as_str().as_bytes()[17];
            let replacement = ALPHABET[other];
            if replacement != check {
                let bad = format!("{}{}", first, replacement as char);
                let is_check_error = matches!(Uscc::parse(&bad), Err(UsccError::CheckCharacter { .. }));
                prop_assert!(is_check_error);
            }
        }
    }
}
