//! One error type for the HTTP layer, mapped to status codes in one place. The JSON shape is
//! `{"error":{"code":"…","message":"…","fields":{…}}}`; codes are stable, messages come from
//! the message catalog in the caller's language. Internal errors are logged, never echoed.

use crate::i18n;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opchub_app::{AppError, ErrorKind};
use opchub_store::StoreError;
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    /// Field name → error code (messages are looked up as `field.<code>`).
    pub fields: BTreeMap<String, String>,
    /// Extra detail appended to the message.
    pub detail: Option<String>,
    /// Field name → detail appended to that field's message (e.g. the expected check character).
    pub field_details: BTreeMap<String, String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            fields: BTreeMap::new(),
            detail: None,
            field_details: BTreeMap::new(),
        }
    }
    // The common errors are the application's (`opchub_app::AppError`), mapped here.
    pub fn unauthorized() -> Self {
        AppError::unauthorized().into()
    }
    pub fn forbidden() -> Self {
        AppError::forbidden().into()
    }
    pub fn not_found() -> Self {
        AppError::not_found().into()
    }
    pub fn conflict(code: &str) -> Self {
        AppError::conflict(code).into()
    }
    pub fn bad_request(code: &str) -> Self {
        AppError::bad_request(code).into()
    }
    pub fn internal() -> Self {
        AppError::internal().into()
    }
    pub fn validation(fields: BTreeMap<String, String>) -> Self {
        AppError::validation(fields).into()
    }
    /// A validation error from a [`Checker`](opchub_domain::input::Checker), with its details.
    pub fn checked(c: opchub_domain::input::Checker) -> Self {
        AppError::checked(c).into()
    }
    pub fn field(field: &str, code: &str) -> Self {
        AppError::field(field, code).into()
    }
    pub fn with_detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    /// The message in `lang`, and the per-field messages.
    pub fn messages(&self, lang: &str) -> (String, BTreeMap<String, String>) {
        let mut msg = catalog_text(lang, "error", &self.code);
        if let Some(d) = &self.detail {
            msg = format!("{msg}: {d}");
        }
        let fields = self
            .fields
            .iter()
            .map(|(k, v)| {
                let text = catalog_text(lang, "field", v);
                let text = match self.field_details.get(k) {
                    Some(d) => format!("{text} ({d})"),
                    None => text,
                };
                (k.clone(), text)
            })
            .collect();
        (msg, fields)
    }
}

/// A feature whose catalog has its own `[<table>.error]` (and maybe `[<table>.field]`) section.
struct FeatureCatalog {
    /// The feature's table in the catalogs (`skill` → `[skill.error]`).
    table: &'static str,
    /// The prefix the feature's codes carry, if they carry one (`skill_…`, M2.3).
    code_prefix: Option<&'static str>,
}

/// The features whose error messages live in their own catalog table, `[<feature>.error]` and
/// `[<feature>.field]`, beside the shared `[error]` and `[field]` (what any feature may answer:
/// malformed requests, sign-in, passwords, files). Every catalog table is a feature's or shared;
/// none is named after the change that added it. (`[ledger.error]` is not listed: it holds the
/// per-event messages of a ledger batch's answer, which `api::ledger` reads itself.)
const FEATURE_CATALOGS: &[FeatureCatalog] = &[
    // the Skill Store (M2.3)
    FeatureCatalog {
        table: "skill",
        code_prefix: Some("skill_"),
    },
    // the demand board (M2.4)
    FeatureCatalog {
        table: "demand",
        code_prefix: None,
    },
    // a party's facts: people, payout account
    FeatureCatalog {
        table: "facts",
        code_prefix: None,
    },
    // integrity: source scopes, price reviews, findings
    FeatureCatalog {
        table: "integrity",
        code_prefix: None,
    },
    // monthly bills
    FeatureCatalog {
        table: "bills",
        code_prefix: None,
    },
];

/// The message of `code` in `section` (`error` for an error's code, `field` for a field's),
/// by one rule for every feature of [`FEATURE_CATALOGS`]:
/// 1. a code carrying a feature's prefix (`skill_secret_aws_access_key`) is that feature's:
///    `<table>.error.<rest>`, else its family `<table>.error.<first word of rest>`
///    (`skill.error.secret`), else the shared `error.<code>` — for a field's code too;
/// 2. any other code: the shared `<section>.<code>`, else the first feature without a prefix
///    that has `<table>.<section>.<code>` (`demand.error.…`, `demand.field.…`);
/// 3. else the catalog's fallback for the shared key (Chinese, then the key itself).
fn catalog_text(lang: &str, section: &str, code: &str) -> String {
    for f in FEATURE_CATALOGS {
        if let Some(rest) = f.code_prefix.and_then(|p| code.strip_prefix(p)) {
            let exact = format!("{}.error.{rest}", f.table);
            if i18n::has("zh", &exact) {
                return i18n::text(lang, &exact);
            }
            if let Some((family, _)) = rest.split_once('_') {
                let k = format!("{}.error.{family}", f.table);
                if i18n::has("zh", &k) {
                    return i18n::text(lang, &k);
                }
            }
            return i18n::text(lang, &format!("error.{code}"));
        }
    }
    let key = format!("{section}.{code}");
    if !i18n::has(lang, &key) {
        for f in FEATURE_CATALOGS.iter().filter(|f| f.code_prefix.is_none()) {
            let feature = format!("{}.{key}", f.table);
            if i18n::has(lang, &feature) {
                return i18n::text(lang, &feature);
            }
        }
    }
    i18n::text(lang, &key)
}

opchub_app::module_errors! {
    /// What the HTTP layer itself refuses, before any use case runs: the door every request
    /// comes through (body, content type, CSRF, a key's scope, the metrics token). Their status
    /// comes from [`status_of`] like every other error's.
    pub enum HttpError {
        /// The body is larger than the route allows.
        BodyTooLarge => (TooLarge, "body_too_large"),
        /// A JSON route was sent another content type.
        JsonRequired => (UnsupportedMedia, "json_required"),
        /// The JSON does not fit the request type.
        InvalidBody => (Invalid, "invalid_body"),
        /// The JSON names a field the request type does not have.
        UnknownField => (Invalid, "unknown_field"),
        /// A browser session's change did not carry its CSRF token.
        CsrfFailed => (Forbidden, "csrf_failed"),
        /// The API key's scopes do not cover this request.
        InsufficientScope => (Forbidden, "insufficient_scope"),
        /// `/metrics` needs its token (or loopback).
        MetricsTokenRequired => (Unauthenticated, "metrics_token_required"),
    }
}

impl From<HttpError> for ApiError {
    fn from(e: HttpError) -> Self {
        AppError::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        AppError::from(e).into()
    }
}

/// The one place an application error's kind becomes an HTTP status.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
        ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError {
            status: status_of(e.kind),
            code: e.code,
            fields: e.fields,
            detail: e.detail,
            field_details: e.field_details,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let lang = i18n::current_lang();
        let (message, fields) = self.messages(&lang);
        let mut body = serde_json::json!({ "error": { "code": self.code, "message": message } });
        if !fields.is_empty() {
            let field_codes: BTreeMap<_, _> = self.fields.clone();
            body["error"]["fields"] = serde_json::json!(fields);
            body["error"]["field_codes"] = serde_json::json!(field_codes);
        }
        (self.status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Whether `resp` is an error answer that did not come through [`ApiError`]: one of axum's
/// rejections (a query string, path or body that did not parse, a body over the limit, a
/// method the route does not have) is `text/plain` (or empty for 405).
pub fn is_plain_error(resp: &Response) -> bool {
    use axum::http::header::CONTENT_TYPE;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    match resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) => ct.starts_with("text/plain"),
        None => status == StatusCode::METHOD_NOT_ALLOWED,
    }
}

/// The stable code of a plain error answer, by its status.
fn plain_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::SERVICE_UNAVAILABLE => "service_unavailable",
        s if s.is_server_error() => "internal",
        _ => "request_failed",
    }
}

/// A plain error answer as an [`ApiError`] of the same status, with a stable code and axum's
/// text as the detail (a rejection's text names what did not parse; a 500's text is dropped).
pub async fn plain_to_api_error(resp: Response) -> ApiError {
    let status = resp.status();
    let code = plain_code(status);
    let mut e = ApiError::new(status, code);
    if status != StatusCode::INTERNAL_SERVER_ERROR {
        if let Ok(bytes) = axum::body::to_bytes(resp.into_body(), 4096).await {
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            if !text.is_empty() {
                e.detail = Some(text.chars().take(300).collect());
            }
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use opchub_app::Coded;

    /// Every refusal a use-case module declares has its own message in both catalogs: none
    /// reaches a user as its bare code or as the other language's text.
    #[test]
    fn every_module_error_has_a_message_in_both_catalogs() {
        fn codes<E: Coded + Copy + Into<AppError>>(all: &[E]) -> Vec<AppError> {
            all.iter().map(|e| (*e).into()).collect()
        }
        let all: Vec<AppError> = [
            codes(opchub_app::accounts::AccountError::ALL),
            codes(opchub_app::applications::ApplicationError::ALL),
            codes(opchub_app::bills::BillError::ALL),
            codes(opchub_app::party_facts::FactsError::ALL),
            codes(opchub_app::ledger::LedgerError::ALL),
            codes(opchub_app::gateway::GatewayAdminError::ALL),
            codes(opchub_app::registry::RegistryError::ALL),
            codes(opchub_app::files::FileError::ALL),
            codes(opchub_app::datasets::DatasetError::ALL),
            codes(opchub_app::records::RecordError::ALL),
            codes(opchub_app::settlement::SettlementError::ALL),
            codes(opchub_app::demands::DemandError::ALL),
            codes(opchub_app::skills::SkillError::ALL),
            codes(HttpError::ALL),
        ]
        .concat();
        assert!(all.len() > 40, "the check reads every module's refusals");
        let mut missing = vec![];
        for e in all {
            let code = e.code.clone();
            let api = ApiError::from(e);
            let (zh, _) = api.messages("zh");
            let (en, _) = api.messages("en");
            if zh.contains(&code) || en.contains(&code) || zh == en {
                missing.push(format!("{code}: zh {zh:?}, en {en:?}"));
            }
        }
        assert_eq!(missing, Vec::<String>::new());
    }
}
