//! F3 exclusion lists as CSV: `uscc,name,reason[,event_date]` with a header line; the
//! restricted-industry catalogue may instead list industries, `industry_code,name,reason`
//! (GB/T 4754-2017 codes at any level: `C`, `C25`, `C251`, `C2511`). The whole file is validated
//! before anything is stored; the first bad line is named with its field, so a malformed import
//! changes nothing.

use chrono::NaiveDate;
use opchub_domain::{IndustryCode, Uscc};
use opchub_store::settlement::{ExclusionRow, EXCLUSION_KINDS};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", location(*.line, .field))]
pub struct ImportError {
    /// 1-based line of the file (the header is line 1); 0 for the file as a whole.
    pub line: u64,
    pub field: String,
    pub message: String,
    /// Stable code: `unknown_list_kind`, `bad_header`, `bad_csv`, `bad_uscc`, `bad_industry_code`, `required`, `bad_date`,
    /// `too_many_rows`.
    pub code: &'static str,
}

fn location(line: u64, field: &str) -> String {
    if line == 0 {
        field.to_string()
    } else {
        format!("line {line}, {field}")
    }
}

/// At most this many entries per list.
pub const MAX_ROWS: usize = 200_000;

fn err(line: u64, field: &str, code: &'static str, message: impl Into<String>) -> ImportError {
    ImportError {
        line,
        field: field.to_string(),
        message: message.into(),
        code,
    }
}

/// Parses and validates one list file for `kind`. Returns the rows and the file's SHA-256.
pub fn parse(kind: &str, bytes: &[u8]) -> Result<(Vec<ExclusionRow>, String), ImportError> {
    if !EXCLUSION_KINDS.iter().any(|(k, _)| *k == kind) {
        let kinds: Vec<&str> = EXCLUSION_KINDS.iter().map(|(k, _)| *k).collect();
        return Err(err(
            0,
            "kind",
            "unknown_list_kind",
            format!("unknown list kind {kind:?}; one of {}", kinds.join(", ")),
        ));
    }
    let sha = hex::encode(Sha256::digest(bytes));
    let text = std::str::from_utf8(bytes).map_err(|_| err(0, "file", "bad_csv", "not UTF-8 text"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| err(1, "header", "bad_csv", e.to_string()))?.clone();
    let names: Vec<String> = headers.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
    let (by_code, with_date) = match names.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["uscc", "name", "reason"] => (false, false),
        ["uscc", "name", "reason", "event_date"] => (false, true),
        ["industry_code", "name", "reason"] if kind == "restricted_industry" => (true, false),
        _ => {
            let expected = if kind == "restricted_industry" {
                "uscc,name,reason[,event_date] or industry_code,name,reason"
            } else {
                "uscc,name,reason[,event_date]"
            };
            return Err(err(
                1,
                "header",
                "bad_header",
                format!("expected columns {expected}, got {}", names.join(",")),
            ));
        }
    };
    let mut rows = vec![];
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| err(line, "row", "bad_csv", format!("wrong number of columns or bad quoting ({e})")))?;
        if rows.len() >= MAX_ROWS {
            return Err(err(line, "file", "too_many_rows", format!("at most {MAX_ROWS} entries per list")));
        }
        let get = |n: usize| rec.get(n).unwrap_or("").trim().to_string();
        let (uscc, industry_code) = if by_code {
            let code = IndustryCode::parse(&get(0)).map_err(|e| err(line, "industry_code", "bad_industry_code", e.to_string()))?;
            (String::new(), Some(code.to_string()))
        } else {
            let uscc = Uscc::parse(&get(0)).map_err(|e| err(line, "uscc", "bad_uscc", e.to_string()))?;
            (uscc.to_string(), None)
        };
        let name = get(1);
        if name.is_empty() {
            return Err(err(line, "name", "required", "a name is required"));
        }
        let reason = get(2);
        if reason.is_empty() {
            return Err(err(line, "reason", "required", "a reason is required"));
        }
        let event_date = if with_date && !get(3).is_empty() {
            let d = NaiveDate::parse_from_str(&get(3), "%Y-%m-%d")
                .map_err(|_| err(line, "event_date", "bad_date", format!("expected YYYY-MM-DD, got {:?}", get(3))))?;
            Some(d.to_string())
        } else {
            None
        };
        if kind == "safety_accident" && event_date.is_none() {
            return Err(err(
                line,
                "event_date",
                "required",
                "a safety accident needs its date (F3 counts accidents in the window)",
            ));
        }
        rows.push(ExclusionRow {
            line: line as i64,
            uscc,
            industry_code,
            name,
            reason,
            event_date,
        });
    }
    Ok((rows, sha))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "91110106MA01ABCD1X";

    fn valid_uscc() -> String {
        // Any USCC the domain accepts; derive one by fixing the check character.
        for c in "0123456789ABCDEFGHJKLMNPQRTUWXY".chars() {
            let cand = format!("{}{c}", &GOOD[..17]);
            if Uscc::parse(&cand).is_ok() {
                return cand;
            }
        }
        unreachable!("some check character is valid")
    }

    #[test]
    fn a_good_list_parses_with_its_digest() {
        let u = valid_uscc();
        let text = format!("uscc,name,reason,event_date\n{u},某公司,失信被执行人,\n");
        let (rows, sha) = parse("no_support_sanction", text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].uscc, u);
        assert_eq!(sha.len(), 64);
    }

    #[test]
    fn the_restricted_industry_catalogue_lists_industry_codes() {
        let (rows, _) = parse(
            "restricted_industry",
            "industry_code,name,reason\nC25,石油、煤炭及其他燃料加工业,限制类\n0610,烟煤和无烟煤开采洗选,禁止类\n".as_bytes(),
        )
        .unwrap();
        let codes: Vec<_> = rows.iter().map(|r| (r.uscc.as_str(), r.industry_code.as_deref())).collect();
        assert_eq!(codes, [("", Some("C25")), ("", Some("B0610"))]);
        let e = parse("restricted_industry", "industry_code,name,reason\nC25,a,b\nC6513,c,d\n".as_bytes()).unwrap_err();
        assert_eq!((e.line, e.field.as_str(), e.code), (3, "industry_code", "bad_industry_code"));
        // Only the industry catalogue lists industries; a sanction names a company.
        let e = parse("no_support_sanction", b"industry_code,name,reason\nC25,a,b\n").unwrap_err();
        assert_eq!((e.line, e.code), (1, "bad_header"));
    }

    #[test]
    fn bad_lines_are_named() {
        let u = valid_uscc();
        let e = parse(
            "restricted_industry",
            format!("uscc,name,reason\n{u},a,b\n91110106MA01ABCD10,c,d\n").as_bytes(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str(), e.code), (3, "uscc", "bad_uscc"));
        let e = parse("restricted_industry", b"id,name\n1,2\n").unwrap_err();
        assert_eq!((e.line, e.code), (1, "bad_header"));
        let e = parse("restricted_industry", format!("uscc,name,reason\n{u},a\n").as_bytes()).unwrap_err();
        assert_eq!((e.line, e.code), (2, "bad_csv"));
        let e = parse(
            "safety_accident",
            format!("uscc,name,reason,event_date\n{u},a,fire,2027-13-01\n").as_bytes(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str(), e.code), (2, "event_date", "bad_date"));
        let e = parse("safety_accident", format!("uscc,name,reason\n{u},a,fire\n").as_bytes()).unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("event_date", "required"));
        let e = parse("blacklist", b"uscc,name,reason\n").unwrap_err();
        assert_eq!(e.code, "unknown_list_kind");
    }
}
