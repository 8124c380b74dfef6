//! The kinds of failure every front end maps in one place (the HTTP status in `opchub_web`,
//! the CLI's exit message): shared by the use cases (`opchub_app::error`) and the gateway
//! (`opchub_gateway::GatewayError`), so both say what went wrong in the same words.

/// What kind of failure an error is; front ends map it (HTTP status, CLI exit message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Not signed in, or the credential is not valid.
    Unauthenticated,
    /// Signed in, but this caller may not do this.
    Forbidden,
    /// No such thing, or one the caller may not know exists.
    NotFound,
    /// The request is malformed (not a validation of its fields).
    BadRequest,
    /// A field or the whole input fails validation.
    Invalid,
    /// The state changed or forbids it (already taken, another version, wrong stage).
    Conflict,
    /// A stored thing is gone (a file no longer in the file store).
    Gone,
    /// The input is larger than allowed.
    TooLarge,
    /// The input's media type is not one accepted.
    UnsupportedMedia,
    /// A byte range outside the file.
    RangeNotSatisfiable,
    /// Too many requests; try again later.
    RateLimited,
    /// An upstream (publisher, provider) failed or answered wrongly.
    Upstream,
    /// The upstream took too long.
    UpstreamTimeout,
    /// The platform cannot do it now (overloaded, not configured).
    Unavailable,
    /// A bug or an outage of our own; logged, never echoed.
    Internal,
}
