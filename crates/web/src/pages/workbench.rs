//! The workbench (工作台, issue 21 item 2): every signed-in person's landing page.

use super::demands::notification_rows;
use crate::auth::{Caller, CsrfToken};
use crate::error::ApiError;
use crate::view::{error_page, render};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use minijinja::context;

pub async fn workbench(State(s): State<AppState>, caller: Caller, Extension(csrf): Extension<CsrfToken>) -> Response {
    let Some(p) = caller.0.as_ref() else {
        return error_page(&s, None, &ApiError::unauthorized());
    };
    match opchub_app::workbench::of(&s.app, p).await {
        Ok(mut wb) => {
            let recent = notification_rows(std::mem::take(&mut wb.recent));
            render(
                &s,
                Some(p),
                &csrf.0,
                "workbench.html",
                StatusCode::OK,
                context! { wb => wb, recent => recent },
            )
        }
        Err(e) => error_page(&s, Some(p), &ApiError::from(e)),
    }
}
