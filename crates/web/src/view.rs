//! Rendering a page: the template, the caller and the language in its context, and an error
//! as a readable page. Below both the access rules (`auth`, which answers a refused page
//! request with [`error_page`]) and the page handlers (`pages`), so neither imports the other
//! to render.

use crate::error::ApiError;
use crate::{i18n, AppState};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{context, Value};
use opchub_app::Principal;

tokio::task_local! {
    /// The signed-in caller's unread notifications (the header's badge), read once per page
    /// request by the access layer.
    static UNREAD: i64;
}

/// Runs a page request with the caller's unread count known to the layout.
pub async fn with_unread<F: std::future::Future>(n: i64, f: F) -> F::Output {
    UNREAD.scope(n, f).await
}

fn unread() -> i64 {
    UNREAD.try_with(|n| *n).unwrap_or(0)
}

/// Renders template `name` with the caller, the language and the CSRF token in its context.
pub(crate) fn render(s: &AppState, caller: Option<&Principal>, csrf: &str, name: &str, status: StatusCode, ctx: Value) -> Response {
    let lang = i18n::current_lang();
    let user =
        caller.map(|p| context! { name => p.user.display_name.clone(), username => p.user.username.clone(), role => p.role().as_str() });
    let menus = crate::nav::menus(caller.map(|p| p.role()));
    let full = context! { lang => lang, user => user, csrf => csrf, menus => menus, unread => unread(), ..ctx };
    match s.templates.get_template(name).and_then(|t| t.render(full)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "render failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "render error").into_response()
        }
    }
}

/// An error as a readable page (a rejected page request, or a use case's refusal).
pub fn error_page(s: &AppState, caller: Option<&Principal>, e: &ApiError) -> Response {
    let (message, _) = e.messages(&i18n::current_lang());
    render(
        s,
        caller,
        "",
        "error.html",
        e.status,
        context! { status => e.status.as_u16(), code => e.code.clone(), message => message },
    )
}
