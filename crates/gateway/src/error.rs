//! What the gateway answers instead of a model's reply: one enum, each variant with its stable
//! `code` (OpenAI's `error.code`), its [`ErrorKind`] (the web layer turns it into the HTTP
//! status in one place, with every other error), the OpenAI error `type` the SDKs branch on,
//! and for rate limits and the budget when to try again. The message is the variant's
//! `Display`, in English as OpenAI's clients expect. Nothing here knows HTTP: the OpenAI-shaped
//! body is written by `opchub_web`, which wraps this error.

use opchub_domain::error::ErrorKind;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The gateway is not running in this process.
    #[error("The gateway is not running.")]
    NotRunning,
    /// No API key (a session or a source key is no gateway credential).
    #[error("Use an API key: Authorization: Bearer opk_…")]
    InvalidApiKey,
    #[error("The request body is larger than 8 MiB.")]
    RequestTooLarge,
    /// [`GatewayConfig::max_in_flight`](crate::GatewayConfig::max_in_flight) requests are
    /// being handled; refused before any work.
    #[error("The gateway is handling as many requests as it can; retry shortly.")]
    Overloaded,
    #[error("The request body is not valid JSON.")]
    InvalidJson,
    #[error("The request body must be a JSON object.")]
    NotAnObject,
    #[error("You must provide a model parameter.")]
    MissingModel,
    #[error("'stream' must be a boolean.")]
    StreamNotBoolean,
    #[error("Embeddings do not stream.")]
    EmbeddingsDoNotStream,
    /// The key's allowed models do not include this one.
    #[error("This key may not use the model `{0}`.")]
    ModelNotAllowed(String),
    #[error("Too many requests per minute for this key.")]
    RequestsPerMinute { retry_after: u64 },
    #[error("Too many tokens per minute for this key.")]
    TokensPerMinute { retry_after: u64 },
    /// No approved channel serves the model.
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    ModelNotFound(String),
    /// The key's monthly budget cannot hold the most this request could cost.
    #[error("This key's monthly budget does not cover this request.")]
    BudgetExceeded { retry_after: u64 },
    /// Every channel failed before a byte reached the caller (the last failure is named).
    #[error("No upstream channel could serve the request ({0}).")]
    UpstreamFailed(String),
    #[error("The upstream response could not be read.")]
    UpstreamUnreadable,
    /// Our own failure (the store); logged where it happened, never echoed.
    #[error("internal error")]
    Internal,
}

impl GatewayError {
    /// The stable code (OpenAI's `error.code`).
    pub fn code(&self) -> &'static str {
        use GatewayError::*;
        match self {
            NotRunning => "gateway_unavailable",
            InvalidApiKey => "invalid_api_key",
            RequestTooLarge => "request_too_large",
            Overloaded => "overloaded",
            InvalidJson | NotAnObject => "invalid_json",
            MissingModel => "missing_model",
            StreamNotBoolean => "invalid_type",
            EmbeddingsDoNotStream => "invalid_value",
            ModelNotAllowed(_) => "model_not_allowed",
            RequestsPerMinute { .. } | TokensPerMinute { .. } => "rate_limit_exceeded",
            ModelNotFound(_) => "model_not_found",
            BudgetExceeded { .. } => "budget_exceeded",
            UpstreamFailed(_) | UpstreamUnreadable => "upstream_failed",
            Internal => "internal",
        }
    }

    pub fn kind(&self) -> ErrorKind {
        use GatewayError::*;
        match self {
            NotRunning | Overloaded => ErrorKind::Unavailable,
            InvalidApiKey => ErrorKind::Unauthenticated,
            RequestTooLarge => ErrorKind::TooLarge,
            InvalidJson | NotAnObject | MissingModel | StreamNotBoolean | EmbeddingsDoNotStream => ErrorKind::BadRequest,
            ModelNotAllowed(_) => ErrorKind::Forbidden,
            RequestsPerMinute { .. } | TokensPerMinute { .. } | BudgetExceeded { .. } => ErrorKind::RateLimited,
            ModelNotFound(_) => ErrorKind::NotFound,
            UpstreamFailed(_) | UpstreamUnreadable => ErrorKind::Upstream,
            Internal => ErrorKind::Internal,
        }
    }

    /// OpenAI's error `type`, which the SDKs branch on (`insufficient_quota` is not retried).
    pub fn openai_type(&self) -> &'static str {
        use GatewayError::*;
        match self {
            NotRunning | Overloaded | Internal => "server_error",
            RequestsPerMinute { .. } | TokensPerMinute { .. } => "rate_limit_error",
            BudgetExceeded { .. } => "insufficient_quota",
            UpstreamFailed(_) | UpstreamUnreadable => "upstream_error",
            _ => "invalid_request_error",
        }
    }

    /// Seconds until a retry may succeed (the `Retry-After` header).
    pub fn retry_after(&self) -> Option<u64> {
        use GatewayError::*;
        match self {
            Overloaded => Some(1),
            RequestsPerMinute { retry_after } | TokensPerMinute { retry_after } | BudgetExceeded { retry_after } => {
                Some((*retry_after).max(1))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_keeps_the_code_type_and_retry_the_sdks_read() {
        let b = GatewayError::BudgetExceeded { retry_after: 0 };
        assert_eq!(
            (b.code(), b.openai_type(), b.kind(), b.retry_after()),
            ("budget_exceeded", "insufficient_quota", ErrorKind::RateLimited, Some(1))
        );
        let r = GatewayError::TokensPerMinute { retry_after: 7 };
        assert_eq!(
            (r.code(), r.openai_type(), r.retry_after()),
            ("rate_limit_exceeded", "rate_limit_error", Some(7))
        );
        let m = GatewayError::ModelNotFound("gpt-x".into());
        assert_eq!((m.code(), m.kind()), ("model_not_found", ErrorKind::NotFound));
        assert_eq!(m.to_string(), "The model `gpt-x` does not exist or you do not have access to it.");
        assert_eq!(GatewayError::Internal.retry_after(), None);
    }
}
