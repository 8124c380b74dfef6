//! 国民经济行业分类 (Industrial classification for national economic activities), GB/T 4754-2017.
//!
//! A code is a section letter (门类, A–T) followed by 0, 2, 3 or 4 digits: division (大类),
//! group (中类) and class (小类), e.g. `I`, `I65`, `I651`, `I6513`. The letter is implied by the
//! division, so `6513` and `I6513` are the same code. Codes are hierarchical: `C25` covers
//! every class that starts with it, which is how F3's catalogue of prohibited and restricted
//! industries is matched against a company's main industry.

use std::fmt;

/// Sections of GB/T 4754-2017 with the first and last division of each.
const SECTIONS: &[(char, u8, u8)] = &[
    ('A', 1, 5),
    ('B', 6, 12),
    ('C', 13, 43),
    ('D', 44, 46),
    ('E', 47, 50),
    ('F', 51, 52),
    ('G', 53, 60),
    ('H', 61, 62),
    ('I', 63, 65),
    ('J', 66, 69),
    ('K', 70, 70),
    ('L', 71, 72),
    ('M', 73, 75),
    ('N', 76, 79),
    ('O', 80, 82),
    ('P', 83, 83),
    ('Q', 84, 85),
    ('R', 86, 90),
    ('S', 91, 96),
    ('T', 97, 97),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndustryCodeError {
    #[error("行业代码格式应为门类字母加2至4位数字，如 I6513 (an industry code is a section letter and 2 to 4 digits, e.g. I6513)")]
    Format,
    #[error("没有以{0:02}开头的行业大类 (no industry division {0:02} in GB/T 4754-2017)")]
    Division(u8),
    #[error("大类{division:02}属于门类{expected}，而不是{found} (division {division:02} belongs to section {expected}, not {found})")]
    Section { division: u8, expected: char, found: char },
}

impl IndustryCodeError {
    /// Stable machine-readable code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            IndustryCodeError::Format => "industry_code_format",
            IndustryCodeError::Division(_) => "industry_code_division",
            IndustryCodeError::Section { .. } => "industry_code_section",
        }
    }
}

/// A validated, normalised industry code (section letter + digits). Construct with [`IndustryCode::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct IndustryCode(String);

fn section_of(division: u8) -> Option<char> {
    SECTIONS
        .iter()
        .find(|(_, first, last)| (*first..=*last).contains(&division))
        .map(|(s, _, _)| *s)
}

impl IndustryCode {
    /// Accepts `I6513`, `i6513`, `6513`, `I65`, `I` (surrounding spaces ignored); the letter, when
    /// given, must be the division's section.
    pub fn parse(s: &str) -> Result<Self, IndustryCodeError> {
        let s = s.trim().to_ascii_uppercase();
        let (letter, digits) = match s.chars().next() {
            Some(c) if c.is_ascii_alphabetic() => (Some(c), &s[1..]),
            _ => (None, s.as_str()),
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 0 | 2..=4) {
            return Err(IndustryCodeError::Format);
        }
        if digits.is_empty() {
            return match letter {
                Some(l) if SECTIONS.iter().any(|(s, _, _)| *s == l) => Ok(IndustryCode(l.to_string())),
                _ => Err(IndustryCodeError::Format),
            };
        }
        let division: u8 = digits[..2].parse().map_err(|_| IndustryCodeError::Format)?;
        let section = section_of(division).ok_or(IndustryCodeError::Division(division))?;
        if let Some(found) = letter.filter(|l| *l != section) {
            return Err(IndustryCodeError::Section {
                division,
                expected: section,
                found,
            });
        }
        Ok(IndustryCode(format!("{section}{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this (catalogue) code covers `other` (a company's code): same code or a parent.
    pub fn covers(&self, other: &IndustryCode) -> bool {
        other.0.starts_with(&self.0)
    }
}

impl fmt::Display for IndustryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_normalised_with_their_section() {
        assert_eq!(IndustryCode::parse("6513").unwrap().as_str(), "I6513");
        assert_eq!(IndustryCode::parse(" i6513 ").unwrap().as_str(), "I6513");
        assert_eq!(IndustryCode::parse("C25").unwrap().as_str(), "C25");
        assert_eq!(IndustryCode::parse("b").unwrap().as_str(), "B");
        assert_eq!(IndustryCode::parse("0111").unwrap().as_str(), "A0111");
        assert_eq!(IndustryCode::parse("9700").unwrap().as_str(), "T9700");
    }

    #[test]
    fn bad_codes_are_refused_with_a_reason() {
        assert_eq!(IndustryCode::parse("").unwrap_err().code(), "industry_code_format");
        assert_eq!(IndustryCode::parse("I6").unwrap_err().code(), "industry_code_format");
        assert_eq!(IndustryCode::parse("I65133").unwrap_err().code(), "industry_code_format");
        assert_eq!(IndustryCode::parse("Z").unwrap_err().code(), "industry_code_format");
        assert_eq!(IndustryCode::parse("65-1").unwrap_err().code(), "industry_code_format");
        assert_eq!(IndustryCode::parse("99").unwrap_err().code(), "industry_code_division");
        assert_eq!(IndustryCode::parse("00").unwrap_err().code(), "industry_code_division");
        let e = IndustryCode::parse("C6513").unwrap_err();
        assert_eq!(
            e,
            IndustryCodeError::Section {
                division: 65,
                expected: 'I',
                found: 'C'
            }
        );
    }

    #[test]
    fn a_catalogue_code_covers_its_subclasses_only() {
        let p = |s| IndustryCode::parse(s).unwrap();
        assert!(p("C25").covers(&p("2511")));
        assert!(p("C").covers(&p("2511")));
        assert!(p("2511").covers(&p("2511")));
        assert!(!p("2511").covers(&p("C25")));
        assert!(!p("C25").covers(&p("2611")));
    }

    #[test]
    fn every_division_has_exactly_one_section() {
        for d in 1..=97u8 {
            let n = SECTIONS.iter().filter(|(_, a, b)| (*a..=*b).contains(&d)).count();
            assert_eq!(n, 1, "division {d:02}");
        }
    }
}
