//! The one error type of the policy engine. Every variant that comes from bad input names the
//! field it is about (`facts.rd_spend[2].amount_fen`, `as_of`, `clause`), so the CLI and the web
//! layer can say exactly what to fix. Ineligibility is not an error: it is a `Decision`.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy file (or a test-case file) is not valid TOML of the expected shape.
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    /// The policy file parses but a value is wrong (unknown version, negative cap, …).
    #[error("policy file: {field}: {message}")]
    InvalidPolicy { field: String, message: String },
    #[error("clause: unknown clause {0:?}")]
    UnknownClause(String),
    #[error("clause: {0} pays no money, there is nothing to evaluate")]
    NotPaying(String),
    /// An input value (a fact, the year, the as-of date, the beneficiary) is malformed or out of range.
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    #[error("{0}: amount out of range")]
    Overflow(String),
}

impl PolicyError {
    pub(crate) fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError::InvalidPolicy {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The input field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            PolicyError::BadInput { field, .. } | PolicyError::InvalidPolicy { field, .. } => Some(field),
            PolicyError::UnknownClause(_) | PolicyError::NotPaying(_) => Some("clause"),
            PolicyError::Parse { .. } | PolicyError::Overflow(_) => None,
        }
    }
}
