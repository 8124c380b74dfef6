//! `SKILL.md` as in the Agent Skills specification: YAML frontmatter between `---` lines with
//! `name` (1–64 characters: lowercase letters, digits and hyphens, no leading, trailing or
//! double hyphen), `description` (1–1,024 characters), optional `license`, `compatibility`
//! (≤ 500 characters), `metadata` (string → string) and `allowed-tools`; then a Markdown body.

use crate::Finding;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_NAME: usize = 64;
pub const MAX_DESCRIPTION: usize = 1024;
pub const MAX_COMPATIBILITY: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, rename = "allowed-tools", skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<String>,
}

/// The raw frontmatter: every field optional, so that a missing one gets its own code.
#[derive(Deserialize)]
struct Raw {
    name: Option<serde_norway::Value>,
    description: Option<serde_norway::Value>,
    license: Option<String>,
    compatibility: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, serde_norway::Value>,
    #[serde(rename = "allowed-tools")]
    allowed_tools: Option<String>,
}

/// Whether `name` is a valid skill name (also used for store slugs).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn scalar(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Splits `SKILL.md` into (frontmatter, body) and validates the frontmatter.
pub fn parse(text: &str) -> Result<(Manifest, String), Finding> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    if lines.next().map(str::trim_end) != Some("---") {
        return Err(Finding::new("manifest_no_frontmatter", "SKILL.md must start with a --- line"));
    }
    let mut yaml = String::new();
    let mut closed = false;
    let mut consumed = text.find('\n').map(|i| i + 1).unwrap_or(text.len());
    for line in lines {
        consumed += line.len();
        if line.trim_end() == "---" {
            closed = true;
            break;
        }
        yaml.push_str(line);
    }
    if !closed {
        return Err(Finding::new(
            "manifest_no_frontmatter",
            "the frontmatter is not closed by a --- line",
        ));
    }
    let body = text.get(consumed..).unwrap_or("").to_string();
    let raw: Raw = serde_norway::from_str(&yaml).map_err(|e| Finding::new("manifest_invalid_yaml", e.to_string()))?;
    let name = raw.name.as_ref().and_then(scalar).unwrap_or_default();
    if name.is_empty() {
        return Err(Finding::new("manifest_name_missing", "name is required"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(Finding::new(
            "manifest_name_too_long",
            format!("{} characters (max {MAX_NAME})", name.chars().count()),
        ));
    }
    if !valid_name(&name) {
        return Err(Finding::new(
            "manifest_name_invalid",
            "lowercase letters, digits and single hyphens, not at either end",
        ));
    }
    let description = raw.description.as_ref().and_then(scalar).unwrap_or_default();
    if description.trim().is_empty() {
        return Err(Finding::new("manifest_description_missing", "description is required"));
    }
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(Finding::new(
            "manifest_description_too_long",
            format!("{} characters (max {MAX_DESCRIPTION})", description.chars().count()),
        ));
    }
    if raw.compatibility.as_ref().is_some_and(|c| c.chars().count() > MAX_COMPATIBILITY) {
        return Err(Finding::new(
            "manifest_compatibility_too_long",
            format!("max {MAX_COMPATIBILITY} characters"),
        ));
    }
    let mut metadata = BTreeMap::new();
    for (k, v) in raw.metadata {
        let Some(s) = scalar(&v) else {
            return Err(Finding::new("manifest_metadata_invalid", format!("metadata.{k} must be a string")));
        };
        metadata.insert(k, s);
    }
    Ok((
        Manifest {
            name,
            description,
            license: raw.license,
            compatibility: raw.compatibility,
            metadata,
            allowed_tools: raw.allowed_tools,
        },
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_skill_md_parses_with_its_body() {
        let (m, body) = parse("---\nname: invoice-helper\ndescription: 发票助手，帮你整理报销单。\nlicense: MIT\nmetadata:\n  author: opc\n  version: 1.0\nallowed-tools: Bash(git:*) Read\n---\n# Invoice helper\nUse it.\n").unwrap();
        assert_eq!(m.name, "invoice-helper");
        assert_eq!(m.metadata.get("version").map(String::as_str), Some("1.0"));
        assert_eq!(m.allowed_tools.as_deref(), Some("Bash(git:*) Read"));
        assert!(body.starts_with("# Invoice helper"));
    }

    #[test]
    fn missing_frontmatter_and_bad_names_are_refused_with_their_codes() {
        assert_eq!(parse("# just markdown\n").unwrap_err().code, "manifest_no_frontmatter");
        assert_eq!(parse("---\nname: x\n").unwrap_err().code, "manifest_no_frontmatter");
        let long = format!("---\nname: {}\ndescription: d\n---\n", "a".repeat(65));
        assert_eq!(parse(&long).unwrap_err().code, "manifest_name_too_long");
        let ok64 = format!("---\nname: {}\ndescription: d\n---\n", "a".repeat(64));
        assert!(parse(&ok64).is_ok());
        for bad in ["Invoice", "-x", "x-", "a--b", "a_b", "发票"] {
            let t = format!("---\nname: {bad}\ndescription: d\n---\n");
            assert_eq!(parse(&t).unwrap_err().code, "manifest_name_invalid", "{bad}");
        }
        assert_eq!(parse("---\nname: a\n---\n").unwrap_err().code, "manifest_description_missing");
        let long_d = format!("---\nname: a\ndescription: {}\n---\n", "d".repeat(1025));
        assert_eq!(parse(&long_d).unwrap_err().code, "manifest_description_too_long");
        assert_eq!(parse("---\nname: [a\n---\n").unwrap_err().code, "manifest_invalid_yaml");
    }
}
