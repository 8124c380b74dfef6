//! The errors of the use cases, in words a front end can map: a stable `code` (the JSON API's
//! `error.code`, the catalogs' key), a [`ErrorKind`] that says what went wrong in general
//! (the web layer turns it into an HTTP status in one place, `opchub_web::error`), and the
//! fields a validation error names. Nothing here knows HTTP.
//!
//! Each module of this crate that has errors of its own declares them as one `thiserror` enum
//! whose variants carry their stable code and kind ([`Coded`]); [`AppError`] is the common
//! currency every such enum converts into, so a use case may call another module's use case
//! with `?`.

use opchub_store::StoreError;
use std::collections::BTreeMap;

pub use opchub_domain::error::ErrorKind;

/// An error with a stable code and kind: what every module enum of this crate implements.
pub trait Coded {
    fn code(&self) -> &str;
    fn kind(&self) -> ErrorKind;
}

/// The common error of the use cases: a kind, a stable code, and for validation the fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}")]
pub struct AppError {
    pub kind: ErrorKind,
    pub code: String,
    /// Field name → error code (messages are looked up as `field.<code>`).
    pub fields: BTreeMap<String, String>,
    /// Extra detail appended to the message.
    pub detail: Option<String>,
    /// Field name → detail appended to that field's message (e.g. the expected check character).
    pub field_details: BTreeMap<String, String>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: ErrorKind, code: &str) -> Self {
        AppError {
            kind,
            code: code.to_string(),
            fields: BTreeMap::new(),
            detail: None,
            field_details: BTreeMap::new(),
        }
    }
    pub fn unauthorized() -> Self {
        Self::new(ErrorKind::Unauthenticated, "unauthorized")
    }
    pub fn forbidden() -> Self {
        Self::new(ErrorKind::Forbidden, "forbidden")
    }
    pub fn not_found() -> Self {
        Self::new(ErrorKind::NotFound, "not_found")
    }
    pub fn conflict(code: &str) -> Self {
        Self::new(ErrorKind::Conflict, code)
    }
    pub fn bad_request(code: &str) -> Self {
        Self::new(ErrorKind::BadRequest, code)
    }
    pub fn internal() -> Self {
        Self::new(ErrorKind::Internal, "internal")
    }
    pub fn validation(fields: BTreeMap<String, String>) -> Self {
        AppError {
            fields,
            ..Self::new(ErrorKind::Invalid, "validation_failed")
        }
    }
    /// A validation error from a [`Checker`](opchub_domain::input::Checker), with its details.
    pub fn checked(c: opchub_domain::input::Checker) -> Self {
        let mut e = Self::validation(c.errors);
        e.field_details = c.details;
        e
    }
    pub fn field(field: &str, code: &str) -> Self {
        let mut f = BTreeMap::new();
        f.insert(field.to_string(), code.to_string());
        Self::validation(f)
    }
    /// The same error with a file check's field (`file`) named `to` (the field of the request
    /// that carried the file, e.g. `receipt`).
    pub fn refield(mut self, to: &str) -> Self {
        if let Some(code) = self.fields.remove("file") {
            self.fields.insert(to.to_string(), code);
        }
        self
    }
    pub fn with_detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
    /// Logs an internal failure (its cause stays in the log) and returns the opaque error.
    pub fn internal_from(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{what}");
        Self::internal()
    }
}

impl Coded for AppError {
    fn code(&self) -> &str {
        &self.code
    }
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::not_found(),
            StoreError::Conflict(code) => AppError::conflict(code),
            StoreError::Invalid { field, code } => AppError::field(field, code),
            other => AppError::internal_from("store error", other),
        }
    }
}

/// Declares a module's error enum: one `thiserror` enum whose variants each name their stable
/// code (its `Display`, the catalogs' key) and [`ErrorKind`], with [`Coded`], the conversion
/// into [`AppError`], and `ALL` (every variant, so a test can check each code has a message in
/// both catalogs). A refusal that also names a field or a detail is built from the variant
/// (`AppError::from(E::X).with_detail(…)`). The declaring crate depends on `thiserror`.
///
/// ```
/// opchub_app::module_errors! {
///     /// What a thing refuses.
///     pub enum ThingError {
///         /// The thing is closed.
///         Closed => (Conflict, "thing_closed"),
///     }
/// }
/// use opchub_app::error::{AppError, Coded, ErrorKind};
/// assert_eq!((ThingError::Closed.code(), ThingError::Closed.kind()), ("thing_closed", ErrorKind::Conflict));
/// assert_eq!(AppError::from(ThingError::Closed).code, "thing_closed");
/// assert_eq!(ThingError::ALL, &[ThingError::Closed]);
/// ```
#[macro_export]
macro_rules! module_errors {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => ($kind:ident, $code:literal) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
        $vis enum $name {
            $( $(#[$vmeta])* #[error($code)] $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }

        impl $crate::error::Coded for $name {
            fn code(&self) -> &str {
                match self {
                    $($name::$variant => $code),+
                }
            }
            fn kind(&self) -> $crate::error::ErrorKind {
                match self {
                    $($name::$variant => $crate::error::ErrorKind::$kind),+
                }
            }
        }

        impl From<$name> for $crate::error::AppError {
            fn from(e: $name) -> Self {
                use $crate::error::Coded;
                $crate::error::AppError::new(e.kind(), e.code())
            }
        }
    };
}
