//! The Skill Store's pure rules (M2.3): what a publisher may submit and what the automated
//! review checks before the platform operator decides.
//!
//! - [`manifest`]: `SKILL.md` frontmatter as in the Agent Skills specification.
//! - [`package`]: zip packages — size, ratio (zip bombs), entry names (path traversal).
//! - [`scan`]: secrets, prompt-injection/concealment and dangerous-script patterns.
//! - [`openapi`]: an OpenAPI 3 document's operations as tools.
//! - [`tools`]: the canonical tool list and its hash (what a version pins).
//! - [`net`]: which upstream addresses a publisher may point the platform at.
//!
//! Nothing here does I/O except [`net`]'s resolution of publisher host names (at publish time
//! and, through its guarded resolver, at connect time).

pub mod manifest;
pub mod nesting;
pub mod net;
pub mod openapi;
pub mod package;
pub mod scan;
pub mod tools;

/// A refusal with a stable code (and a human detail for the report).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub code: String,
    pub detail: String,
}

impl Finding {
    pub fn new(code: &str, detail: impl Into<String>) -> Self {
        Finding {
            code: code.to_string(),
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

/// SHA-256 hex of bytes.
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[cfg(test)]
mod fuzz_tests;
