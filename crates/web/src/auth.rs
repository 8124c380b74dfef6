//! Authentication and authorisation: argon2 passwords, browser sessions (HttpOnly, SameSite
//! cookies) with CSRF tokens, API keys (shown once, stored as SHA-256, scoped, expiring,
//! revocable), and the per-route access check that every route in `routes.rs` goes through.

use crate::error::ApiError;
use crate::error::HttpError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use opchub_app::accounts;
use opchub_domain::Role;

pub const SESSION_COOKIE: &str = "opchub_session";
pub const CSRF_COOKIE: &str = "opchub_csrf";
pub const CSRF_FIELD: &str = "_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub use opchub_app::accounts::{SCOPES, SESSION_TTL_MS};

pub use opchub_app::crypto::{hash_password, new_api_key, random_token, sha256_hex, verify_password};

/// Who may call a route. Ownership (which OPC, which community) is checked by the handler.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    Public,
    Authenticated,
    Roles(&'static [Role]),
    /// Anonymous visitors and the listed roles (e.g. the registration wizard).
    AnonymousOr(&'static [Role]),
    /// The usage ledger's ingestion: the listed roles, and the only route a ledger source key
    /// (`ols_…`, whose owner must have one of these roles) may call.
    LedgerSource(&'static [Role]),
    /// A route that checks its own bearer token (`/metrics`, for the scraper's token): anyone
    /// reaches the handler, and `Authorization` is not read as an API key or a session.
    OwnToken,
}

impl Access {
    pub fn allows(&self, role: Option<Role>) -> bool {
        match (self, role) {
            (Access::Public | Access::OwnToken, _) => true,
            (Access::AnonymousOr(_), None) => true,
            (Access::AnonymousOr(rs), Some(r)) => rs.contains(&r),
            (_, None) => false,
            (Access::Authenticated, Some(_)) => true,
            (Access::Roles(rs) | Access::LedgerSource(rs), Some(r)) => rs.contains(&r),
        }
    }

    /// Whether a ledger source key may call the route.
    pub fn admits_source_keys(&self) -> bool {
        matches!(self, Access::LedgerSource(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Page,
    Api,
    /// The OpenAI-compatible gateway: errors in OpenAI's shape.
    OpenAi,
}

pub use opchub_app::principal::{Principal, Via};

/// The caller of a route: None on public routes for anonymous visitors.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<Principal>);

/// The CSRF token a rendered form must carry (the session's, or the anonymous cookie's).
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Caller>().cloned().unwrap_or(Caller(None)))
    }
}

impl Caller {
    pub fn require(&self) -> Result<&Principal, ApiError> {
        self.0.as_ref().ok_or_else(ApiError::unauthorized)
    }
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn set_cookie(name: &str, value: &str, max_age_s: i64, same_site: &str, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Resolves the caller from `Authorization: Bearer …` (API key) or the session cookie.
/// A bearer header that names no live key is an error even on public routes.
pub async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        let Some(token) = token else {
            return Err(ApiError::unauthorized().with_detail("Authorization: Bearer <key>"));
        };
        if token.starts_with("ols_") {
            return Ok(Some(accounts::source_principal(state, token).await?));
        }
        return Ok(Some(accounts::api_key_principal(state, token).await?));
    }
    if let Some(tok) = cookie(headers, SESSION_COOKIE) {
        if let Some(p) = accounts::session_principal(state, tok).await? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

fn is_state_changing(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Route middleware: authenticates, checks the route's [`Access`] rule and API-key scope,
/// and checks CSRF on state-changing requests made with a browser session or anonymous forms.
pub async fn enforce(
    State((state, access, surface, upload)): State<(AppState, Access, Surface, Option<usize>)>,
    req: Request,
    next: Next,
) -> Response {
    match enforce_inner(&state, access, surface, upload, req).await {
        Ok((req, new_csrf)) => {
            // The header's unread badge (issue 21 item 2): pages of a signed-in person only.
            let unread = match req.extensions().get::<Caller>() {
                Some(Caller(Some(p))) if surface == Surface::Page && matches!(p.via, Via::Session { .. }) => {
                    opchub_app::workbench::unread(&state.app, p).await.unwrap_or(0)
                }
                _ => 0,
            };
            let mut resp = crate::view::with_unread(unread, next.run(req)).await;
            if crate::error::is_plain_error(&resp) {
                // axum's own rejections: in the surface's error shape like every other error.
                let e = crate::error::plain_to_api_error(resp).await;
                resp = reject_in(&state, surface, e);
            }
            if let Some(tok) = new_csrf {
                let c = set_cookie(CSRF_COOKIE, &tok, 30 * 24 * 3600, "Strict", state.config.cookie_secure);
                if let Ok(v) = c.parse() {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(rej) => rej,
    }
}

/// An error in the shape of the surface: the JSON error shape, an error page, or OpenAI's.
fn reject_in(state: &AppState, surface: Surface, e: ApiError) -> Response {
    match surface {
        Surface::Api => e.into_response(),
        Surface::Page => crate::view::error_page(state, None, &e),
        Surface::OpenAi => crate::api::gateway::OpenAiError::refused(&e).into_response(),
    }
}

async fn enforce_inner(
    state: &AppState,
    access: Access,
    surface: Surface,
    upload: Option<usize>,
    req: Request,
) -> Result<(Request, Option<String>), Response> {
    let reject = |e: ApiError| -> Response { reject_in(state, surface, e) };
    let principal = if matches!(access, Access::OwnToken) {
        None
    } else {
        resolve(state, req.headers()).await.map_err(reject)?
    };
    let role = principal.as_ref().map(|p| p.role());
    if !access.allows(role) {
        if principal.is_none() {
            if surface == Surface::Page {
                let next = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
                let target = format!("/login?next={}", urlencode(next));
                return Err(Redirect::to(&target).into_response());
            }
            return Err(reject(ApiError::unauthorized()));
        }
        return Err(reject(ApiError::forbidden()));
    }
    // A key's client is sampled for the integrity scan (issue 18 item 1, usage ties).
    if let Some(Principal {
        via: Via::ApiKey { key_id, .. },
        ..
    }) = &principal
    {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(ip) = opchub_app::clients::client_ip(peer, header("x-forwarded-for")) {
            state.clients.note(state, key_id, ip, header("user-agent").unwrap_or(""));
        }
    }
    let changing = is_state_changing(req.method());
    if matches!(
        principal,
        Some(Principal {
            via: Via::Source { .. },
            ..
        })
    ) && !access.admits_source_keys()
    {
        return Err(reject(
            ApiError::from(HttpError::InsufficientScope).with_detail("source keys only submit events"),
        ));
    }
    if let Some(Principal {
        via: Via::ApiKey { scopes, .. },
        ..
    }) = &principal
    {
        let needed = if changing { "write" } else { "read" };
        let ok = scopes.iter().any(|s| s == needed || s == "write");
        if !ok {
            return Err(reject(ApiError::from(HttpError::InsufficientScope).with_detail(needed)));
        }
    }
    let session_csrf = match &principal {
        Some(Principal {
            via: Via::Session { csrf },
            ..
        }) => Some(csrf.clone()),
        _ => None,
    };
    let anon_csrf = cookie(req.headers(), CSRF_COOKIE).map(str::to_string);
    let form_token = session_csrf.clone().or(anon_csrf.clone());
    let mut req = req;
    if changing
        && !matches!(
            principal,
            Some(Principal {
                via: Via::ApiKey { .. } | Via::Source { .. },
                ..
            })
        )
    {
        match surface {
            Surface::Api | Surface::OpenAi => {
                // Browser sessions calling the JSON API must echo the token in a header.
                if let Some(expected) = &session_csrf {
                    let got = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                    if got != Some(expected.as_str()) {
                        return Err(reject(ApiError::from(HttpError::CsrfFailed)));
                    }
                }
            }
            Surface::Page => {
                // Forms with files (multipart) only where the route table allows uploads.
                let multipart = upload.and_then(|_| crate::upload::boundary(req.headers()));
                let limit = upload.filter(|_| multipart.is_some()).unwrap_or(state.config.body_limit);
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, limit)
                    .await
                    .map_err(|_| reject(ApiError::from(HttpError::BodyTooLarge)))?;
                let got: Option<String> = match &multipart {
                    Some(boundary) => crate::upload::field(bytes.clone(), boundary, CSRF_FIELD).await,
                    None => serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
                        .ok()
                        .and_then(|kv| kv.into_iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v)),
                };
                let ok = match (&form_token, &got) {
                    (Some(e), Some(g)) => !e.is_empty() && e == g,
                    _ => false,
                };
                if !ok {
                    return Err(reject(ApiError::from(HttpError::CsrfFailed)));
                }
                req = Request::from_parts(parts, Body::from(bytes));
            }
        }
    }
    // Anonymous visitors of pages get a CSRF cookie on their first visit.
    let new_csrf = if form_token.is_none() && surface == Surface::Page {
        Some(random_token(16))
    } else {
        None
    };
    let token = form_token.or(new_csrf.clone()).unwrap_or_default();
    req.extensions_mut().insert(CsrfToken(token));
    req.extensions_mut().insert(Caller(principal));
    Ok((req, new_csrf))
}

pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)])
        .map(|v| v[2..].to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let h = hash_password("s3cret-pass").unwrap();
        assert!(verify_password("s3cret-pass", &h));
        assert!(!verify_password("s3cret-pas", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn api_keys_are_random_and_stored_as_hash() {
        let (a, pa, ha) = new_api_key();
        let (b, _, _) = new_api_key();
        assert_ne!(a, b);
        assert!(a.starts_with(&pa));
        assert_eq!(ha, sha256_hex(&a));
        assert!(!ha.contains(&a[4..]));
    }
}
